"""Each opening of an incident, until it resolved (`incident_openings`): the `incidents` row
keeps only the latest, so a crash at 10:00 and again at 14:00 left one row dated 14:00, and
once it reopened the next morning, yesterday's digest said "Incidents: none".

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_openings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_incident_openings_key", "incident_openings", ["key"])
    op.create_index("ix_incident_openings_app_opened", "incident_openings", ["app", "opened_at"])
    # The latest opening of each incident kept so far: the earlier ones are gone.
    op.execute(
        "INSERT INTO incident_openings (key, app, kind, severity, opened_at, last_at, resolved) "
        "SELECT key, app, kind, severity, first_at, last_at, state = 'resolved' FROM incidents"
    )


def downgrade() -> None:
    op.drop_index("ix_incident_openings_app_opened", "incident_openings")
    op.drop_index("ix_incident_openings_key", "incident_openings")
    op.drop_table("incident_openings")
