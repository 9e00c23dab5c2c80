"""Names people type: nearest-match suggestions for a mistyped app name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, candidates: Iterable[str], limit: int = 3) -> str | None:
    """`a`, `a or b`, or `a, b or c`: the closest candidates, best first; None if none is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=limit, cutoff=0.6)
    if not matches:
        return None
    quoted = [f"`{m}`" for m in matches]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
