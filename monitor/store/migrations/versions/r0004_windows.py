"""0004: roll-up windows shared by the members of a fleet.

- ``window_parts``: one row per (roll-up scope, event-time window, input partition, first
  offset of the batch): the mergeable summaries of that batch's records of that partition
  in that window, written with the partition's offsets in its owner's fenced checkpoint;
  the member that judges the roll-ups merges and deletes them once the window has closed;
- ``offsets.mark_ms`` / ``offsets.heard_ms``: each partition's watermark (the latest event
  time it delivered) and the wall-clock time its owner last checkpointed records of it,
  so the judge can close windows by the watermarks of partitions other members own.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.create_table(
        "window_parts",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("start_ms", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("first_offset", sa.BigInteger, primary_key=True),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_window_parts_start_ms", "window_parts", ["start_ms"])
    op.add_column("offsets", sa.Column("mark_ms", sa.BigInteger))
    op.add_column("offsets", sa.Column("heard_ms", sa.BigInteger))
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="4"))


def downgrade() -> None:
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="3"))
    with op.batch_alter_table("offsets") as batch:
        batch.drop_column("heard_ms")
        batch.drop_column("mark_ms")
    op.drop_index("ix_window_parts_start_ms", table_name="window_parts")
    op.drop_table("window_parts")
