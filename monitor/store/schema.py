"""The schema revision of a history store, and its upgrade when the store opens.

Revisions are Alembic scripts packaged in ``monitor/store/migrations/versions/`` (no
``alembic.ini``: the Alembic config is built here). Opening a store, in one transaction
(on PostgreSQL under an advisory lock, so a fleet starting at once migrates once; on SQLite
with the write lock):

1. read the revision in ``alembic_version``; one this driftgate does not know was written
   by a newer driftgate: refuse (:class:`~monitor.errors.StoreError`), change nothing;
2. no ``alembic_version`` but driftgate's ``meta`` table: a database of the driftgate
   before migrations, ``meta.schema_version`` 1 = revision 0001: stamp it 0001 (any other
   version is refused as unknown);
3. upgrade to the head revision (a new database: every revision from 0001).

>>> import tempfile, os
>>> from monitor.store.database import Database
>>> db = Database(os.path.join(tempfile.mkdtemp(), "h.db"))
>>> current_revision(db) is None, upgrade(db), current_revision(db), head_revision()
(True, '0004', '0004', '0004')
>>> db.close()
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, select, text

from monitor.errors import StoreError
from monitor.store import tables as t
from monitor.store.database import Database

__all__ = ["current_revision", "head_revision", "is_known", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LEGACY_REVISION = "0001"  # what meta.schema_version 1 without alembic_version is
_LOCK_KEY = 0x6472696674676174  # "driftgat": the advisory lock of migrations on PostgreSQL

log = logging.getLogger(__name__)
# Alembic says "Context impl SQLiteImpl." at INFO on every open; we log real upgrades.
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest revision this driftgate knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS}"
    return head


def _stored(conn: Connection) -> str | None:
    """The revision in ``alembic_version``; ``LEGACY_REVISION`` for a pre-migration store."""
    heads = MigrationContext.configure(conn).get_current_heads()
    if heads:
        return ",".join(heads)
    if "meta" not in inspect(conn).get_table_names():
        return None
    version = conn.execute(
        select(t.meta.c.value).where(t.meta.c.key == "schema_version")
    ).scalar_one_or_none()
    return LEGACY_REVISION if version == "1" else f"schema_version {version}"


def current_revision(db: Database) -> str | None:
    """The schema revision of the store (None: an empty database), without changing it."""
    with db.tx() as conn:
        return _stored(conn)


def is_known(revision: str) -> bool:
    """Whether this driftgate has ``revision`` (comma-separated heads) among its migrations."""
    script = ScriptDirectory.from_config(_config())
    try:
        return all(script.get_revision(r) is not None for r in revision.split(","))
    except CommandError:
        return False


def upgrade(db: Database) -> str:
    """Bring the store to the head revision (see the module docstring); return it."""
    head = head_revision()
    with db.tx(write=True) as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        stored = _stored(conn)
        if stored == head:
            return head
        if stored is not None and not is_known(stored):
            raise StoreError(
                f"history store {db.location} was written by a newer driftgate (schema "
                f"revision {stored}; this one knows up to {head}): upgrade driftgate or "
                "point history.url elsewhere"
            )
        cfg = _config(conn)
        if stored == LEGACY_REVISION and not MigrationContext.configure(conn).get_current_heads():
            command.stamp(cfg, LEGACY_REVISION)
        try:
            command.upgrade(cfg, "head")
        except CommandError as exc:
            raise StoreError(f"history store {db.location}: migration failed: {exc}") from None
    if stored is None:
        log.debug("history store %s: created at schema revision %s", db.location, head)
    else:
        log.info("history store %s: schema revision %s upgraded to %s", db.location, stored, head)
    return head
