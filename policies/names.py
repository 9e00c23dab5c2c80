"""Names people type: nearest-match suggestions for a mistyped verb, app or size name.

Matching ignores case (`DEMO` is close to `demo`); a suggestion is spelled as the
candidate is, since that is what the user should type.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence

from policies.slack_text import code, listed, shown

NAMED_MOST = 10  # dynos or process types named beside one the app does not have


def closest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates close to `name`, best first, in their own spelling; [] if none is."""
    spelled: dict[str, str] = {}
    for candidate in candidates:
        spelled.setdefault(candidate.lower(), candidate)
    # Folded as NFKC first: full-width letters (a CJK keyboard's `ｓｔａｔｕｓ`) are the
    # letters they show, and had matched nothing.
    folded = unicodedata.normalize("NFKC", name).lower()
    matches = difflib.get_close_matches(folded, list(spelled), n=limit, cutoff=0.6)
    return [spelled[match] for match in matches]


def suggest(name: str, candidates: Iterable[str], limit: int = 3) -> str | None:
    """`a`, `a or b`, or `a, b or c`: the closest candidates, best first; None if none is."""
    return _said(closest(name, candidates, limit))


def suggest_app(
    name: str, known: Mapping[str, str], limit: int = 3, preferred: Collection[str] | None = None
) -> str | None:
    """The apps whose names are close to `name`, as `suggest` says them. `known` maps each
    name an app goes by (its alias, its Heroku app or Beanstalk environment) to the name to
    type; an app close by two of its names is offered once, and `name` itself never. With
    `preferred` (names to type: the apps a verb works on), another app is offered only when
    it is closer than each of those."""
    offered: list[str] = []
    for match in closest(name, known, limit=max(1, len(known))):
        app = known[match]
        # Another app after one the verb works on is left out.
        other = preferred is not None and app not in preferred
        late = other and any(seen in (preferred or ()) for seen in offered)
        if app not in offered and app.lower() != name.lower() and not late:
            offered.append(app)
    return _said(offered[:limit])


def _said(matches: list[str]) -> str | None:
    if not matches:
        return None
    quoted = [code(m) for m in matches]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def not_on_app(app: str | None, name: str, have: Sequence[str], what: str = "process type") -> str:
    """The one sentence for a process type (or, with `what`, a dyno) `name` that `app` does
    not have, naming those it has: every verb says it alike, so a user learns one reading.
    `app` None reads as "The app"."""
    named = listed(have[:NAMED_MOST])
    if len(have) > NAMED_MOST:
        named += f" and {len(have) - NAMED_MOST:,} more"
    return f"{code(app) if app else 'The app'} has no {shown(name)} {what} (it has: {named})."
