"""The migrations form one line: every revision has one parent, and exactly one is the head.

Branches merged in parallel each add "the next" migration; two files with the same parent
give Alembic two heads, and `deploybot migrate` then refuses to run. This catches it first.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from bot.store.db import _MIGRATIONS


def test_the_migrations_have_one_head_and_no_branch() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    revisions = list(scripts.walk_revisions())
    parents = [r.down_revision for r in revisions]
    assert len(parents) == len(set(parents)), "two migrations share a parent"
    ids = [r.revision for r in revisions]
    assert len(ids) == len(set(ids)), "two migrations share a revision id"
