"""Schema migrations at store open: a new store, a store of the driftgate before
migrations (built from its frozen DDL), a store written by a newer driftgate.

The tests that take ``store_target`` run on PostgreSQL too
(tests/integration/test_store_postgres.py imports them)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from monitor.errors import StoreError
from monitor.store import Batch, HistoryStore
from monitor.store import tables as t
from monitor.store.database import Database, database_url
from monitor.store.schema import _config, current_revision, head_revision

V1_DDL = Path(__file__).resolve().parents[1] / "fixtures" / "history_v1_sqlite.sql"


@pytest.fixture
def store_target(tmp_path: Path) -> str:
    return str(tmp_path / "h.db")


def engine_of(target: str) -> Any:
    return create_engine(database_url(target))


def schema_of(target: str) -> dict[str, Any]:
    """Tables, columns (name, type, nullable), primary keys and indexes, as reflected."""
    engine = engine_of(target)
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"])) for i in insp.get_indexes(table)
                ),
            }
        return out
    finally:
        engine.dispose()


def schema_version(target: str) -> str:
    engine = engine_of(target)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
            )
    finally:
        engine.dispose()


def test_a_new_store_is_created_at_head_and_matches_tables_py(store_target: str) -> None:
    store = HistoryStore(store_target)
    assert store.revision == head_revision() == "0004"
    store.close()
    engine = engine_of(store_target)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    finally:
        engine.dispose()
    assert diff == []  # the migrations build exactly what the queries use
    assert schema_version(store_target) == "4"
    reopened = HistoryStore(store_target)  # opening again changes nothing
    assert reopened.revision == "0004"
    reopened.close()


def test_a_store_of_a_newer_driftgate_is_refused_untouched(store_target: str) -> None:
    HistoryStore(store_target).close()
    engine = engine_of(store_target)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    finally:
        engine.dispose()
    before = schema_of(store_target)
    with pytest.raises(StoreError) as info:
        HistoryStore(store_target)
    msg = str(info.value)
    assert "was written by a newer driftgate (schema revision 0042" in msg
    assert "upgrade driftgate or point history.url elsewhere" in msg
    assert "\n" not in msg
    assert schema_of(store_target) == before
    db = Database(store_target)
    assert current_revision(db) == "0042"
    db.close()


def test_stores_opened_at_once_migrate_once(store_target: str) -> None:
    """A fleet starting together: every process opens (and would migrate) the new store."""
    errors: list[BaseException] = []
    stores: list[HistoryStore] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def open_it() -> None:
        start.wait()
        try:
            s = HistoryStore(store_target)
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            stores.append(s)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in stores:
        s.close()
    assert errors == []
    assert [s.revision for s in stores] == ["0004"] * 4


# -- SQLite only: stores of the driftgate before migrations ---------------------------------


def legacy_store(path: Path) -> None:
    """A history file as the pre-migration driftgate left it, with a little of everything."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL.read_text())
    conn.executescript(
        """
        INSERT INTO runs VALUES ('r1', 'logs', 1, 2, 'ok', 7, 1, 1, 1, '{"a": 1}');
        INSERT INTO signals (id, run_id, level, segment, scope, region, cohort, labels, reason,
            signal, evidence, ts_ms, source, partition, "offset", active, state)
            VALUES ('s1', 'r1', 'HALT', 'region=eu', 'region', 'eu', NULL, '{"region": "eu"}',
            'x rose', 'feature:x', '["e1"]', 1000, 'logs', 0, 6, 1, 'active');
        INSERT INTO outbox VALUES ('s1', 'jsonl', NULL);
        INSERT INTO notifications VALUES ('n1', 'pager', 'g', '{}', 0, 'pending', 0, 0, NULL,
            NULL);
        INSERT INTO offsets VALUES ('logs', 0, 7);
        INSERT INTO segment_counts VALUES ('region=eu', 'region', 7);
        INSERT INTO detector_state VALUES ('region=eu', X'00ff');
        """
    )
    conn.commit()
    conn.close()


def test_a_pre_migration_store_is_stamped_and_upgraded_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    legacy_store(path)
    assert "alembic_version" not in schema_of(str(path))
    store = HistoryStore(path)
    assert store.revision == "0004"
    assert store.offsets() == {("logs", 0): 7}
    assert store.segment_counts() == {"region=eu": 7}
    assert store.detector_states() == {"region=eu": b"\x00\xff"}
    assert [s.id for s in store.pending("jsonl")] == ["s1"]
    assert [s.id for s in store.claim_pending("jsonl", "a", 1000, now_ms=0)] == ["s1"]
    assert [r["notification_id"] for r in store.claim_due_notifications("a", 1000, 0)] == ["n1"]
    assert store.totals()["records"] == 7
    store.claim("a", 1, [("logs", 0)])
    store.checkpoint(store.start_run("logs"), Batch(offsets={("logs", 0): 9}), [])
    store.close()
    assert schema_version(str(path)) == "4"
    engine = engine_of(str(path))
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    finally:
        engine.dispose()


def test_revision_0001_is_the_pre_migration_schema_exactly(tmp_path: Path) -> None:
    legacy = tmp_path / "v1.db"
    legacy_store(legacy)
    fresh = tmp_path / "fresh.db"
    db = Database(fresh)
    with db.tx(write=True) as conn:
        command.upgrade(_config(conn), "0001")
    db.close()
    expected = schema_of(str(legacy))
    got = schema_of(str(fresh))
    assert got.pop("alembic_version")
    assert got == expected
    assert schema_version(str(fresh)) == "1"
    # and the later revisions downgrade back to it
    HistoryStore(fresh).close()
    db = Database(fresh)
    with db.tx(write=True) as conn:
        command.downgrade(_config(conn), "0001")
    db.close()
    got = schema_of(str(fresh))
    got.pop("alembic_version")
    assert got == expected


def test_an_unknown_pre_migration_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    legacy_store(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"newer driftgate \(schema revision schema_version 7"):
        HistoryStore(path)
