"""An audit row's change reaches other apps (a promotion's next stage, a swap's other
environment): each of those apps' history and App Home card shows the row, on SQLite and
PostgreSQL, and the row is still one row."""

from __future__ import annotations

from bot.store.audit import Actor, AuditLog
from bot.store.db import Database


def test_a_row_is_in_the_history_of_every_app_it_reaches(database_url):
    db = Database(database_url)
    try:
        audit = AuditLog(db)
        alice = Actor("U1")
        promote = audit.start(
            alice, "promote", "staging", "promote staging", None, None, reaches=["prod", "eu"]
        )
        audit.finish(promote, "ok")
        audit.record(alice, "scale", "prod", "scale web=2 prod", "ok")
        # Reaching its own app adds nothing: it is that app's row already.
        audit.start(alice, "swap", "blue", "swap blue green", None, None, reaches=["green", "blue"])

        assert [e.command for e in audit.recent("prod")] == ["scale web=2 prod", "promote staging"]
        assert [e.command for e in audit.recent("eu")] == ["promote staging"]
        assert [e.command for e in audit.recent("blue")] == ["swap blue green"]
        assert len(audit.recent(None)) == 3
        # App Home's cards, in one query: each app's newest rows, a reached row included.
        cards = audit.recent_of(["prod", "eu", "staging", "green", "none"], limit=1)
        assert {app: [e.command for e in rows] for app, rows in cards.items()} == {
            "prod": ["scale web=2 prod"],
            "eu": ["promote staging"],
            "staging": ["promote staging"],
            "green": ["swap blue green"],
        }
        assert [e.command for e in audit.recent_of(["prod"], limit=2)["prod"]] == [
            "scale web=2 prod",
            "promote staging",
        ]
    finally:
        db.dispose()
