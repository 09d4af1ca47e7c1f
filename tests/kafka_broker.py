"""A real single-node Kafka broker (KRaft, combined broker+controller) for the test suite.

The jars come from Maven Central via ``tests/kafka/fetch.sh`` (``tests/kafka/pom.xml``), so no
Docker, tarball or ZooKeeper is needed, only Java 17+ (and Maven for the first fetch).

``KafkaBroker`` owns one temp dir (``server.properties``, ``data/``, ``broker.log``), two free
loopback ports (broker + controller) and one ``java kafka.Kafka`` child process, which it stops by
its own PID only. ``restart()`` keeps dirs and ports, so data and committed offsets survive.

Main classes (both in the ``kafka_2.13`` jar; ``bin/kafka-storage.sh`` and
``bin/kafka-server-start.sh`` run the same): ``kafka.tools.StorageTool`` and ``kafka.Kafka``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_TOOLING_DIR = REPO_ROOT / "tests" / "kafka"
FETCH_SCRIPT = KAFKA_TOOLING_DIR / "fetch.sh"
LOG4J2_CONFIG = KAFKA_TOOLING_DIR / "log4j2.properties"
DEFAULT_LIBS_DIR = REPO_ROOT / "build" / "kafka" / "libs"
LIBS_ENV_VAR = "DRIFTGATE_KAFKA_LIBS"
# Written by fetch.sh into the libs dir it manages (sha256 of the pom).
FETCH_MARKER = ".driftgate-kafka-libs.sha256"

STARTUP_TIMEOUT_S = 120.0  # kafka-python's own broker fixture allows 120 s too
STOP_TIMEOUT_S = 30.0
FORMAT_TIMEOUT_S = 120.0
FETCH_TIMEOUT_S = 900.0
LOG_TAIL_LINES = 30

# Heap as in other test harnesses; GC flags as bin/kafka-run-class.sh sets them.
JVM_FLAGS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

# Candidate main classes for formatting storage, newest layout first. 4.x keeps the Scala
# kafka.tools.StorageTool in kafka_2.13 (not org.apache.kafka.tools.StorageTool); we check the jar.
STORAGE_TOOL_CLASSES: tuple[str, ...] = (
    "kafka.tools.StorageTool",
    "org.apache.kafka.tools.StorageTool",
)
SERVER_MAIN_CLASS = "kafka.Kafka"


class TopicFactory(Protocol):
    """Type of the ``kafka_topic`` fixture: creates a uniquely named topic, returns its name."""

    def __call__(self, partitions: int = 1, configs: dict[str, str] | None = None) -> str: ...


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Like Kafka's ``Uuid.randomUuid()`` we never return an id starting with ``-``: the CLI
    parser would take it for an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except FileNotFoundError:
        return ""


def resolve_libs_dir() -> Path:
    """Directory with the broker jars, fetching them first when needed.

    ``$DRIFTGATE_KAFKA_LIBS`` or ``<repo>/build/kafka/libs``. ``tests/kafka/fetch.sh`` runs when the
    directory is missing, or when fetch.sh manages it (its marker file is there: then the run is
    a no-op unless ``tests/kafka/pom.xml`` changed). A directory without the marker is used as is.
    """
    env = os.environ.get(LIBS_ENV_VAR)
    libs = Path(env).expanduser().resolve() if env else DEFAULT_LIBS_DIR
    if not libs.is_dir() or (libs / FETCH_MARKER).is_file():
        bash = shutil.which("bash")
        if bash is None:
            raise RuntimeError(f"bash not found; cannot run {FETCH_SCRIPT} to fetch Kafka jars")
        try:
            proc = subprocess.run(
                [bash, str(FETCH_SCRIPT), str(libs)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=FETCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"{FETCH_SCRIPT} {libs} timed out after {FETCH_TIMEOUT_S:.0f} s"
            ) from exc
        if proc.returncode != 0:
            raise RuntimeError(
                f"{FETCH_SCRIPT} {libs} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
            )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise RuntimeError(
            f"no kafka_2.13-*.jar in {libs} (set {LIBS_ENV_VAR} or run {FETCH_SCRIPT})"
        )
    return libs


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java not found (Kafka 4.x needs Java 17+ on PATH or in $JAVA_HOME)")
    return java


def find_storage_tool_class(libs: Path) -> str:
    """The StorageTool main class that the Kafka jars in ``libs`` actually contain."""
    wanted = {c.replace(".", "/") + ".class": c for c in STORAGE_TOOL_CLASSES}
    found: set[str] = set()
    for jar in sorted(libs.glob("kafka*.jar")):
        with zipfile.ZipFile(jar) as zf:
            found.update(wanted[n] for n in zf.namelist() if n in wanted)
    for cls in STORAGE_TOOL_CLASSES:
        if cls in found:
            return cls
    raise RuntimeError(f"no StorageTool class ({', '.join(STORAGE_TOOL_CLASSES)}) in {libs}")


# Started and not yet stopped (a strong reference: a forgotten broker is not garbage-collected
# while its JVM runs). Whatever is left at interpreter exit is killed, so no JVM outlives us.
_LIVE_BROKERS: set[KafkaBroker] = set()


@atexit.register
def _stop_leftover_brokers() -> None:
    for broker in list(_LIVE_BROKERS):
        with contextlib.suppress(Exception):
            broker.stop(kill=True)


class KafkaBroker:
    """One single-node KRaft Kafka broker on 127.0.0.1, run as a ``java`` child process.

    Usage (not a doctest: pytest runs with --doctest-modules and a skipped test is unwelcome)::

        with KafkaBroker() as broker:      # start(); close() = stop() + delete the temp dir
            broker.create_topic("events", partitions=3)
            use(broker.bootstrap)          # "127.0.0.1:PORT"
            broker.restart(kill=True)      # crash + restart: same dirs and ports
    """

    def __init__(
        self,
        *,
        libs_dir: Path | None = None,
        work_dir: Path | None = None,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        extra_properties: dict[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self._libs_dir = libs_dir
        self._own_work_dir = work_dir is None
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="driftgate-kafka-")) if work_dir is None else work_dir
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.work_dir / "data"
        self.config_path = self.work_dir / "server.properties"
        self.log_path = self.work_dir / "broker.log"
        self.startup_timeout_s = startup_timeout_s
        self.extra_properties = dict(extra_properties or {})
        self.die_with_parent = die_with_parent
        self.port = 0
        self.controller_port = 0
        self.bootstrap = ""
        self._pick_ports()
        self.cluster_id = random_cluster_id()
        self.last_startup_s: float | None = None
        self.starts = 0
        self.failed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: Any = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ public API

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Format storage on first start, launch the JVM and wait until it serves requests."""
        with self._lock:
            if self.is_running:
                return
            try:
                try:
                    self._start_once()
                except RuntimeError:
                    # A port picked at construction may have been taken meanwhile: on a first
                    # start, pick new ports once and retry (storage is reformatted, since the
                    # quorum's voter endpoint is written at format time). A restart must keep
                    # its ports, so no retry there.
                    if self.starts == 0 and "Address already in use" in tail(self.log_path, 200):
                        self._pick_ports()
                        self._reset_storage()
                        self._start_once()
                    else:
                        raise
            except BaseException:
                self.failed = True
                raise
            self.failed = False

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (clean shutdown), SIGKILL after 30 s; ``kill`` = SIGKILL now."""
        with self._lock:
            self._close_admin()
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                if kill:
                    proc.kill()
                else:
                    proc.terminate()
                    try:
                        proc.wait(timeout=STOP_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                proc.wait()
            self._proc = None
            _LIVE_BROKERS.discard(self)

    def restart(self, kill: bool = False) -> None:
        """Stop (SIGTERM; SIGKILL if ``kill``) and start again: same dirs and ports, no reformat."""
        with self._lock:
            self.stop(kill=kill)
            self.start()

    def close(self) -> None:
        """Stop and delete the temp dir (kept if a start-up failed and left a log to read)."""
        self.stop()
        if self._own_work_dir and not (self.failed and self.log_path.exists()):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def create_topic(
        self, name: str, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> None:
        """Create a topic (replication factor 1) and wait until every partition has a leader."""
        spec: dict[str, Any] = {"num_partitions": partitions, "replication_factor": 1}
        if configs:
            spec["configs"] = dict(configs)
        self.admin().create_topics({name: spec}, wait_for_metadata=True)

    def admin(self) -> Any:
        """A cached ``kafka.KafkaAdminClient`` for this broker (closed by ``stop()``)."""
        with self._lock:
            if self._admin is None:
                self._admin = self._new_admin()
            return self._admin

    def __enter__(self) -> KafkaBroker:
        try:
            self.start()
        except BaseException:
            self.close()  # __exit__ does not run when __enter__ raises
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
        return f"KafkaBroker({self.bootstrap}, {state}, dir={self.work_dir})"

    # ------------------------------------------------------------------ internals

    def _pick_ports(self) -> None:
        port = free_port()
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()
        self.port, self.controller_port = port, controller_port
        self.bootstrap = f"127.0.0.1:{port}"

    def _properties(self) -> dict[str, str]:
        listeners = (
            f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        )
        props = {
            # Combined broker+controller with a dynamic (KIP-853) quorum of one, as 4.x
            # config/server.properties; needs `StorageTool format --standalone`.
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            # Defaults are RF 3 / min ISR 2: internal topics would never be created on one broker.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # After a SIGKILL the restarted node's broker gets DUPLICATE_BROKER_REGISTRATION until
            # the dead incarnation's session expires (default 9000 ms, heartbeat 2000 ms): a
            # kill-restart took ~12 s. Broker and controller share one JVM, so a short session
            # cannot expire through a pause of one side only.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # Fast group joins for tests (defaults 3000 ms and 6000 ms).
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
        }
        props.update(self.extra_properties)
        return props

    def _write_config(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self._properties().items())
        self.config_path.write_text(text, encoding="utf-8")

    def _reset_storage(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _java_base(self, libs: Path) -> list[str]:
        return [
            find_java(),
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
            "-cp",
            str(libs / "*"),
        ]

    def _libs(self) -> Path:
        if self._libs_dir is None:
            self._libs_dir = resolve_libs_dir()
        return self._libs_dir

    def _format_storage(self, libs: Path) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *self._java_base(libs),
            find_storage_tool_class(libs),
            "format",
            "--standalone",
            "--cluster-id",
            self.cluster_id,
            "--config",
            str(self.config_path),
        ]
        with self.log_path.open("ab") as log:
            log.write(f"==== driftgate: format: {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                rc = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, timeout=FORMAT_TIMEOUT_S, check=False
                ).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0 or not (self.data_dir / "meta.properties").is_file():
            raise RuntimeError(self._failure(f"formatting Kafka storage failed (exit {rc})"))

    def _start_once(self) -> None:
        libs = self._libs()
        self._write_config()
        self._format_storage(libs)
        cmd = [*self._java_base(libs), SERVER_MAIN_CLASS, str(self.config_path)]
        # With die_with_parent and util-linux setpriv, the kernel SIGTERMs the JVM when the
        # *thread* that started it exits (PR_SET_PDEATHSIG), so even a SIGKILLed test run leaves
        # no broker behind. Start brokers from a long-lived thread (pytest's main thread is).
        # setpriv execs java, so the PID we hold is the JVM's.
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        if setpriv is not None:
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        t0 = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"==== driftgate: start #{self.starts + 1}: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
            )
        _LIVE_BROKERS.add(self)
        try:
            self._wait_ready(t0 + self.startup_timeout_s)
        except BaseException:
            self.stop(kill=True)
            raise
        self.starts += 1
        self.last_startup_s = time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        """Ready = TCP connect to the PLAINTEXT port, then via the admin client: ``list_topics()``
        succeeds, every existing partition has a leader, and the group coordinator answers.

        Raises ``RuntimeError`` (naming the log file, with its tail) if the JVM exits or the
        deadline passes first.
        """
        from kafka.errors import KafkaError

        last_error = "no TCP connect yet"
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                rc = None if proc is None else proc.returncode
                raise RuntimeError(
                    self._failure(f"Kafka broker exited during start-up (exit {rc})")
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    self._failure(
                        f"Kafka broker not ready after {self.startup_timeout_s:.0f} s "
                        f"({last_error})"
                    )
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    pass
            except OSError as exc:
                last_error = f"TCP connect to {self.bootstrap}: {exc}"
                time.sleep(0.1)
                continue
            try:
                admin = self.admin()
                topics = admin.list_topics()
                # After a restart, also wait until every existing partition (internal ones too,
                # e.g. __consumer_offsets) has a leader again, so tests need no retry loops.
                if topics:
                    remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
                    admin.wait_for_topics(topics, timeout_ms=remaining_ms)
                if "__consumer_offsets" in topics:
                    # The group coordinator reloads __consumer_offsets after leadership moves
                    # back (CoordinatorLoadInProgressError meanwhile). It has one partition
                    # (offsets.topic.num.partitions=1), so one probe group covers all groups
                    # (if extra_properties raises that, the probe covers one partition only).
                    admin.list_group_offsets({"driftgate-harness-readiness-probe": None})
                return
            except (KafkaError, OSError) as exc:  # transient while the broker boots
                last_error = f"admin list_topics: {exc!r}"
                self._close_admin()
                time.sleep(0.25)

    def _new_admin(self) -> Any:
        from kafka import KafkaAdminClient  # local import: kafka-python is only needed here

        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="driftgate-test-harness",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,
            reconnect_backoff_max_ms=1_000,
        )

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    def _failure(self, what: str) -> str:
        return (
            f"{what}; bootstrap {self.bootstrap}, log file {self.log_path}; "
            f"last {LOG_TAIL_LINES} lines:\n{tail(self.log_path)}"
        )
