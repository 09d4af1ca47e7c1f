"""0001: the drift history as driftgate created it before migrations (``meta.schema_version`` 1).

Frozen: the tables of ``monitor/store/tables.py`` at that time, spelled out here (never
imported), with the ``schema_version`` row. A database created by that driftgate has
exactly this and no ``alembic_version`` table; ``monitor.store.schema`` stamps it 0001.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_INDEXES = {
    "drift_events": ("segment", "region", "cohort", "signal", "ts_ms"),
    "signals": ("segment", "region", "cohort", "ts_ms"),
    "transitions": ("signal_id",),
}


def upgrade() -> None:
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("dead_letters", sa.BigInteger, nullable=False),
        sa.Column("drift_events", sa.BigInteger, nullable=False),
        sa.Column("signals", sa.BigInteger, nullable=False),
        sa.Column("config", sa.JSON),
    )
    op.create_table(
        "drift_events",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("region", sa.Text),
        sa.Column("cohort", sa.Text),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("signal", sa.Text, nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("effect", sa.Float, nullable=False),
        sa.Column("before", sa.Float, nullable=False),
        sa.Column("after", sa.Float, nullable=False),
        sa.Column("scale", sa.Float, nullable=False),
        sa.Column("observations", sa.BigInteger, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("region", sa.Text),
        sa.Column("cohort", sa.Text),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("signal", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acked_by", sa.Text),
        sa.Column("acked_at", sa.BigInteger),
        sa.Column("ack_comment", sa.Text),
        sa.Column("ended_by", sa.Text),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("end_comment", sa.Text),
    )
    op.create_table(
        "transitions",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("signal_id", sa.String(16), nullable=False),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_ms", sa.BigInteger, nullable=False),
        sa.Column("ends_ms", sa.BigInteger, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("signal_id", sa.String(16), primary_key=True),
        sa.Column("sink", sa.String(64), primary_key=True),
        sa.Column("delivered_at", sa.BigInteger),
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(16), primary_key=True),
        sa.Column("receiver", sa.String(128), primary_key=True),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_ms", sa.BigInteger),
    )
    op.create_table(
        "offsets",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "segment_counts",
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "reference_profiles",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
    )
    op.create_table(
        "detector_state",
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("blob", sa.LargeBinary, nullable=False),
    )
    for table, columns in _INDEXES.items():
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column])
    op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}])


def downgrade() -> None:
    for table, columns in _INDEXES.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
    for table in (
        "detector_state",
        "reference_profiles",
        "segment_counts",
        "offsets",
        "notifications",
        "outbox",
        "silences",
        "transitions",
        "signals",
        "drift_events",
        "runs",
        "meta",
    ):
        op.drop_table(table)
