"""Table definitions of the drift history (SQLAlchemy Core), dialect-neutral.

These are the tables at the newest schema revision. The database gets there through the
migrations in ``monitor/store/migrations/versions/`` (run when a store opens, see
``monitor/store/schema.py``): a change here goes with a new revision there, and
``tests/unit/test_migrations.py`` checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = [
    "SCHEMA_VERSION",
    "detector_state",
    "drift_events",
    "meta",
    "metadata",
    "notifications",
    "offsets",
    "outbox",
    "partition_owners",
    "reference_profiles",
    "runs",
    "segment_counts",
    "signals",
    "silences",
    "transitions",
    "window_parts",
]

#: The ``meta.schema_version`` row (informational; Alembic's ``alembic_version`` is the truth).
SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", Text, nullable=False),
    Column("started_at", BigInteger, nullable=False),  # epoch ms, wall clock
    Column("ended_at", BigInteger),
    Column("status", String(16), nullable=False),  # running | ok | interrupted | failed
    Column("records", BigInteger, nullable=False, default=0),
    Column("dead_letters", BigInteger, nullable=False, default=0),
    Column("drift_events", BigInteger, nullable=False, default=0),
    Column("signals", BigInteger, nullable=False, default=0),
    Column("config", JSON),
    # records whose roll-up window had closed (used by their leaf only); revision 0003
    Column("late", BigInteger, nullable=False, default=0, server_default=text("0")),
)

drift_events = Table(
    "drift_events",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("segment", Text, nullable=False, index=True),
    Column("scope", String(64), nullable=False),
    Column("region", Text, index=True),
    Column("cohort", Text, index=True),
    Column("labels", JSON, nullable=False),
    Column("signal", Text, nullable=False, index=True),
    Column("detector", String(32), nullable=False),
    Column("effect", Float, nullable=False),
    Column("before", Float, nullable=False),
    Column("after", Float, nullable=False),
    Column("scale", Float, nullable=False),
    Column("observations", BigInteger, nullable=False),
    Column("ts_ms", BigInteger, nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("level", String(8), nullable=False),
    Column("segment", Text, nullable=False, index=True),
    Column("scope", String(64), nullable=False),
    Column("region", Text, index=True),
    Column("cohort", Text, index=True),
    Column("labels", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("signal", Text, nullable=False, default=""),
    Column("evidence", JSON, nullable=False),
    Column("ts_ms", BigInteger, nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("active", Integer, nullable=False, default=1),  # 0 once superseded or lifted
    # lifecycle: active | acknowledged | resumed | resolved | superseded
    Column("state", String(16), nullable=False, default="active"),
    Column("acked_by", Text),
    Column("acked_at", BigInteger),
    Column("ack_comment", Text),
    Column("ended_by", Text),
    Column("ended_at", BigInteger),
    Column("end_comment", Text),
)

# Every lifecycle transition a person or the monitor made, in order (audit trail).
transitions = Table(
    "transitions",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("signal_id", String(16), nullable=False, index=True),
    Column("segment", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # ACK | RESUMED | RESOLVED
    Column("actor", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("matchers", JSON, nullable=False),  # [{"label","op","value"}]
    Column("starts_ms", BigInteger, nullable=False),
    Column("ends_ms", BigInteger, nullable=False),
    Column("author", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("signal_id", String(16), primary_key=True),
    Column("sink", String(64), primary_key=True),
    Column("delivered_at", BigInteger),  # null = pending
    # claimed delivery (HistoryStore.claim_pending): who delivers it, until when (a lease)
    Column("claimed_by", Text),
    Column("claimed_until_ms", BigInteger),
)

# The router's durable outbox: one row per notification and receiver. The primary key is the
# idempotency key: a notification planned twice (same state) is stored, and so sent, once.
notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(16), primary_key=True),
    Column("receiver", String(128), primary_key=True),
    Column("group_key", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed | fallback
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("delivered_ms", BigInteger),
    # claimed delivery (HistoryStore.claim_due_notifications): who delivers it, until when
    Column("claimed_by", Text),
    Column("claimed_until_ms", BigInteger),
)

offsets = Table(
    "offsets",
    metadata,
    Column("source", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    # the partition's watermark (latest event time delivered) and the wall-clock time its
    # owner last checkpointed records of it (revision 0004; the roll-up judge reads them)
    Column("mark_ms", BigInteger),
    Column("heard_ms", BigInteger),
)

# Roll-up windows shared by a fleet (revision 0004): the summaries of one batch's records of
# one partition in one (roll-up scope, event-time window), merged by the judge once the
# window has closed (monitor/engine/windows.py).
window_parts = Table(
    "window_parts",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("start_ms", BigInteger, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("first_offset", BigInteger, primary_key=True),
    Column("records", BigInteger, nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Index("ix_window_parts_start_ms", "start_ms"),
)

# Which fleet member owns each source partition, and in which consumer-group generation:
# a checkpoint with a Fence writes only partitions its member owns in its generation.
partition_owners = Table(
    "partition_owners",
    metadata,
    Column("source", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("member", Text, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("claimed_ms", BigInteger, nullable=False),  # epoch ms, wall clock
)

segment_counts = Table(
    "segment_counts",
    metadata,
    Column("segment", Text, primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("records", BigInteger, nullable=False),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("profile", JSON, nullable=False),
)

# Serialized detector state by key: a segment, or any key the engine chooses
# (HistoryStore.detector_states(prefix) reads the keys under a prefix).
detector_state = Table(
    "detector_state",
    metadata,
    Column("segment", Text, primary_key=True),
    Column("blob", LargeBinary, nullable=False),
)
