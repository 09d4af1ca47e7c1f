"""The database under the history store: its URL, engine, transactions and upserts.

One code path for both dialects. SQLite (a file, the default) and PostgreSQL (one database
shared by a fleet of driftgate processes) differ only here:

- the URL: a path is a SQLite file; ``postgresql://`` and ``postgres://`` (as people write
  them) use the psycopg 3 driver (``postgresql+psycopg://``);
- SQLite gets its PRAGMAs (WAL, ``synchronous=NORMAL``, a busy timeout) and real
  transactions: SQLAlchemy emits ``BEGIN`` itself (the ``sqlite3`` driver's legacy mode
  runs a ``SELECT`` outside any transaction), and ``BEGIN IMMEDIATE`` for writes, so a
  write transaction holds the write lock from its first read and a second writer waits
  instead of failing;
- :func:`upsert` picks ``INSERT … ON CONFLICT`` of the engine's dialect (both have
  ``on_conflict_do_nothing`` / ``on_conflict_do_update`` with the same API);
- ``SELECT … FOR UPDATE [SKIP LOCKED]`` locks rows on PostgreSQL and is left out on SQLite,
  where the write transaction already excludes every other writer.

Errors leave as :class:`~monitor.errors.StoreError` with one line naming the database
(password masked) and what to check.

>>> str(database_url("postgresql://dg:pw@db:5432/drift"))
'postgresql+psycopg://dg:***@db:5432/drift'
>>> masked(database_url("postgres://dg:pw@db/drift"))
'postgresql+psycopg://dg:***@db/drift'
>>> database_url("history.db").render_as_string()
'sqlite:///history.db'
>>> database_url("mysql://db/drift")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor.errors.StoreError: history store mysql://db/drift: driftgate keeps its history in ...
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from monitor.errors import StoreError, StoreUnavailable

__all__ = ["Database", "Upsert", "database_url", "masked", "upsert"]

#: A dialect's ``INSERT`` with ``on_conflict_do_nothing`` / ``on_conflict_do_update``.
Upsert = sqlite.Insert | postgresql.Insert

_PG_DRIVER = "postgresql+psycopg"
_BEGIN_OPTION = "driftgate_begin"  # execution option: "IMMEDIATE" for SQLite write transactions


def database_url(target: str | Path) -> URL:
    """The SQLAlchemy URL of ``target``: a database URL, or a path to a SQLite file."""
    text = str(target)
    if "://" not in text:
        return URL.create("sqlite", database=text)
    try:
        url = make_url(text)
    except ArgumentError:
        raise StoreError(
            f"history store: {text.split('://')[0]}://… is not a database URL "
            "(use postgresql://user@host:port/db or a SQLite file)"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername=_PG_DRIVER)
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"history store {masked(url)}: driftgate keeps its history in SQLite or PostgreSQL, "
            f"not {backend} (use postgresql://user@host:port/db or a SQLite file)"
        )
    return url


def masked(url: URL) -> str:
    """``url`` as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def describe(url: URL) -> str:
    """How people name the database: the file of a SQLite URL, else the masked URL."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return masked(url)


def one_line(exc: BaseException) -> str:
    """The driver's message of ``exc`` (not SQLAlchemy's wrapper with the SQL), on one line."""
    detail = getattr(exc, "orig", None) or getattr(exc, "strerror", None) or exc
    return " ".join(str(detail).split())


def upsert(conn: Connection, table: Table) -> Upsert:
    """``INSERT`` into ``table`` in the dialect of ``conn``, with its ``ON CONFLICT`` clauses."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Database:
    """An engine on one SQLite file or PostgreSQL database, and its transactions.

    >>> import tempfile, os
    >>> from sqlalchemy import text
    >>> db = Database(os.path.join(tempfile.mkdtemp(), "h.db"))
    >>> with db.tx(write=True) as conn:
    ...     conn.execute(text("SELECT 1")).scalar_one()
    1
    >>> db.dialect
    'sqlite'
    >>> db.close()
    """

    def __init__(self, target: str | Path, *, connect_timeout_s: float = 10.0) -> None:
        self.url = database_url(target)
        self.location = describe(self.url)
        self.dialect = self.url.get_backend_name()
        try:
            if self.dialect == "sqlite":
                self.engine = self._sqlite_engine()
            else:
                self.engine = create_engine(
                    self.url,
                    pool_pre_ping=True,
                    connect_args={
                        "connect_timeout": max(1, round(connect_timeout_s)),
                        "application_name": "driftgate",
                    },
                )
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise self.open_error(exc) from None

    def _sqlite_engine(self) -> Engine:
        file = self.url.database
        if file and file != ":memory:" and not file.startswith("file:"):
            Path(file).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine

    def ping(self) -> None:
        """Connect once: a database that cannot be reached or opened raises the one-line
        :meth:`open_error` here, not a statement's error later."""
        try:
            with self.engine.connect():
                pass
        except (SQLAlchemyError, OSError) as exc:
            raise self.open_error(exc) from None

    def open_error(self, exc: BaseException) -> StoreError:
        """The one-line error of a database that cannot be opened or reached."""
        if self.dialect == "sqlite":
            hint = "check history.path (or history.url) points to a writable SQLite file"
        elif isinstance(exc, ImportError):
            hint = f"no driver {exc.name!r}: use postgresql:// (psycopg 3 comes with driftgate)"
        else:
            hint = (
                "check history.url: is PostgreSQL running and reachable at that host and port, "
                "and are the user, password (history.password) and database right?"
            )
        return StoreError(
            f"cannot open the history store {self.location}: {one_line(exc)} ({hint})"
        )

    @contextmanager
    def tx(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back when it raises.

        ``write``: on SQLite, ``BEGIN IMMEDIATE`` (take the write lock now, waiting up to the
        busy timeout for another writer). PostgreSQL transactions are READ COMMITTED; the
        callers lock what they must (``FOR UPDATE``).
        """
        try:
            with self.engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            hint = ""
            gone = self.dialect != "sqlite" and _gone(exc)
            if gone:
                hint = " (check that PostgreSQL is up and reachable at history.url)"
            error = StoreUnavailable if gone else StoreError
            raise error(
                f"history store {self.location}: {exc.__class__.__name__}: {one_line(exc)}{hint}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()


def _unreachable(exc: SQLAlchemyError) -> bool:
    """A connection that could not be made (as opposed to a statement that failed)."""
    return isinstance(exc, DBAPIError) and exc.statement is None


def _gone(exc: SQLAlchemyError) -> bool:
    """The server went away: no connection could be made, or the one in use was dropped
    (a PostgreSQL restart: "terminating connection due to administrator command")."""
    if _unreachable(exc):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (_sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")
    # WAL is a property of the file, set once; switching needs a moment alone with it, which
    # SQLite reports as "locked" without waiting when another connection opens it too
    deadline = time.monotonic() + 5.0
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")  # (":memory:" stays "memory")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes (kill -9)
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())
