"""A real PostgreSQL server for the test suite, started from the installed binaries.

``deploy/scripts/install-postgresql.sh`` (``make system-deps``) installs Debian's
``postgresql`` when ``initdb`` is missing; no Docker, no running system cluster is used.

``PostgresServer`` owns one temp dir (``data/``, the Unix socket, ``postgres.log``), one free
loopback port and one ``postgres`` child process, which it stops by its own PID only:
``initdb`` makes a fresh cluster (trust authentication, superuser ``postgres``), then the
postmaster runs as our child — as the ``postgres`` OS user when we are root, since
PostgreSQL refuses to run as root — with ``setpriv`` exec'ing it, so the PID we hold is the
postmaster's and the kernel stops it if the test process dies (``--pdeathsig``). Stopping
sends SIGINT (PostgreSQL's "fast" shutdown, what ``pg_ctl stop -m fast`` sends), then
SIGKILL after 30 s. Durability is off (``fsync=off``): the server's data is thrown away.

``create_database()`` makes a database with a random name and returns its URL;
``drop_database()`` drops it (``WITH (FORCE)``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
INITDB_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 20
OS_USER = "postgres"  # the account PostgreSQL runs as when the tests run as root
SUPERUSER = "postgres"
BIN_ENV_VAR = "DRIFTGATE_PG_BIN"  # a directory with initdb and postgres, to pick a version

SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",  # test data: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except FileNotFoundError:
        return ""


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``postgres``: ``$DRIFTGATE_PG_BIN``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian), else wherever ``initdb`` is on PATH."""
    env = os.environ.get(BIN_ENV_VAR)
    candidates = [Path(env)] if env else []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.split(".")[0].isdigit()]
        versions.sort(key=lambda p: [int(x) for x in p.name.split(".") if x.isdigit()])
        candidates += [p / "bin" for p in reversed(versions)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for d in candidates:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    raise RuntimeError(
        "PostgreSQL binaries not found (no initdb/postgres in $DRIFTGATE_PG_BIN, "
        "/usr/lib/postgresql/*/bin or PATH): run `make system-deps` "
        "(deploy/scripts/install-postgresql.sh)"
    )


_LIVE: set[PostgresServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(kill=True)


class PostgresServer:
    """One throw-away PostgreSQL server on 127.0.0.1, run as a child process.

    Usage (not a doctest: pytest runs with --doctest-modules)::

        with PostgresServer() as pg:           # start(); close() = stop() + delete the dir
            url = pg.create_database()         # postgresql://postgres@127.0.0.1:PORT/dg_…
            use(url)
            pg.drop_database(url)
    """

    def __init__(self, *, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.bin_dir: Path | None = None
        self.work_dir = Path(tempfile.mkdtemp(prefix="driftgate-pg-"))
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "postgres.log"
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.version = ""
        self.failed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as = pwd.getpwnam(OS_USER) if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ public API

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server, as a person would write it."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb on first start, launch the postmaster and wait until it accepts queries."""
        if self.is_running:
            return
        try:
            self.bin_dir = find_bin_dir()
            if self._run_as is not None:
                os.chown(self.work_dir, self._run_as.pw_uid, self._run_as.pw_gid)
            self._initdb()
            try:
                self._start_once()
            except RuntimeError:
                if "could not bind" not in tail(self.log_path, 200):
                    raise
                self.port = free_port()  # taken meanwhile: once more on a new port
                self._start_once()
        except BaseException:
            self.failed = True
            raise

    def stop(self, kill: bool = False) -> None:
        """SIGINT (fast shutdown), SIGKILL after 30 s; ``kill``: SIGKILL now. By our PID."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def close(self) -> None:
        """Stop and delete the temp dir (kept when a start failed, for its log)."""
        self.stop()
        if not (self.failed and self.log_path.exists()):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database with a random name; its URL."""
        name = f"dg_{uuid.uuid4().hex[:16]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"PostgresServer(127.0.0.1:{self.port}, {state}, dir={self.work_dir})"

    # ------------------------------------------------------------------ internals

    def _as_owner(self, cmd: list[str]) -> list[str]:
        """``cmd`` run as the ``postgres`` OS user when we are root (exec'd: same PID)."""
        if self._run_as is None:
            return cmd
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            return [
                setpriv,
                f"--reuid={self._run_as.pw_uid}",
                f"--regid={self._run_as.pw_gid}",
                "--init-groups",
                "--pdeathsig=TERM",
                "--",
                *cmd,
            ]
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root, and neither setpriv nor runuser is installed")
        return [runuser, "-u", OS_USER, "--", *cmd]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C"})
        if self._run_as is not None:
            env["HOME"] = self._run_as.pw_dir
        return env

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        assert self.bin_dir is not None
        cmd = self._as_owner(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        done = subprocess.run(
            cmd,
            cwd=self.work_dir,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=INITDB_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise RuntimeError(f"initdb failed (exit {done.returncode}): {last[-1]}")
        self.version = (self.data_dir / "PG_VERSION").read_text().strip()

    def _start_once(self) -> None:
        assert self.bin_dir is not None
        settings = [f"--{k}={v}" for k, v in SERVER_SETTINGS.items()]
        cmd = self._as_owner(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.work_dir),
                *settings,
            ]
        )
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.work_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _LIVE.add(self)
        try:
            self._wait_ready(time.monotonic() + self.startup_timeout_s)
        except BaseException:
            self.stop(kill=True)
            raise

    def _wait_ready(self, deadline: float) -> None:
        import psycopg

        last = "no connection yet"
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                rc = None if proc is None else proc.returncode
                raise RuntimeError(self._failure(f"postgres exited during start-up (exit {rc})"))
            if time.monotonic() > deadline:
                raise RuntimeError(
                    self._failure(
                        f"postgres not ready after {self.startup_timeout_s:.0f} s ({last})"
                    )
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = " ".join(str(exc).split())
                time.sleep(0.1)

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def _failure(self, what: str) -> str:
        return (
            f"{what}; port {self.port}, log file {self.log_path}; "
            f"last {LOG_TAIL_LINES} lines:\n{tail(self.log_path)}"
        )
