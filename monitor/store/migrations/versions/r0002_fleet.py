"""0002: what a fleet of driftgate processes on one database needs.

- ``partition_owners``: which member owns each source partition, in which consumer-group
  generation (a checkpoint with a ``Fence`` writes only partitions it owns);
- ``claimed_by`` / ``claimed_until_ms`` on ``outbox`` and ``notifications``: a lease on a row
  being delivered, so two members never deliver one row at the same time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_CLAIMED = ("outbox", "notifications")
_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.create_table(
        "partition_owners",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("member", sa.Text, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("claimed_ms", sa.BigInteger, nullable=False),
    )
    for table in _CLAIMED:
        op.add_column(table, sa.Column("claimed_by", sa.Text))
        op.add_column(table, sa.Column("claimed_until_ms", sa.BigInteger))
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="2"))


def downgrade() -> None:
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="1"))
    for table in _CLAIMED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claimed_until_ms")
            batch.drop_column("claimed_by")
    op.drop_table("partition_owners")
