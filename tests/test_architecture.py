"""The rooms' arrows: no module imports a module that imports it back, however far round.

`lint-imports` (run by `make test`) checks the layers and the forbidden arrows; this test
adds what import-linter's contracts do not: cycles between any two modules, counting the
imports made inside functions, which are how a cycle usually hides.
"""

from __future__ import annotations

import grimp

PACKAGES = ("bot", "handlers", "policies")


def _cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = grimp.build_graph(*PACKAGES)
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(imports) == []


def test_the_sandbox_is_reached_only_from_main() -> None:
    graph = grimp.build_graph(*PACKAGES)
    importers = {
        m
        for m in graph.find_modules_that_directly_import("bot.sandbox")
        | {
            importer
            for module in graph.find_descendants("bot.sandbox")
            for importer in graph.find_modules_that_directly_import(module)
        }
        if not m.startswith("bot.sandbox")
    }
    assert importers == {"bot.__main__"}
