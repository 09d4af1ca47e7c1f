"""0003: late records per run.

- ``runs.late``: records whose roll-up window had already closed when they arrived (used
  by their leaf segment, kept out of the roll-ups), so ``driftgate status`` and the API can
  say how much data the roll-ups did not see.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("late", sa.BigInteger, nullable=False, server_default=sa.text("0"))
    )
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="3"))


def downgrade() -> None:
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="2"))
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("late")
