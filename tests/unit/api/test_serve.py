"""`driftgate serve` as a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from monitor.events import Level
from monitor.store import HistoryStore
from tests.unit.api.helpers import raise_signal, seed

SERVE = [sys.executable, "-m", "monitor", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(db: Path, port: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVE, "--db", str(db), "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_answers_the_gate_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    store = HistoryStore(db)
    halt = raise_signal(store, seed(store), Level.HALT, {"region": "eu-west"})
    store.close()
    port = free_port()
    proc = serve(db, port, tmp_path)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "driftgate serve did not answer /healthz"
            time.sleep(0.2)
        gate = client.get("/v1/gate", params={"region": "eu-west", "cohort": "pro"})
        assert gate.status_code == 200
        assert gate.json()["state"] == "halt"
        assert gate.json()["signals"][0]["id"] == halt.id
        assert client.get("/v1/gate", params={"region": "us-east"}).json()["state"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        client.close()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_taken_port_is_one_line_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    HistoryStore(db).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = int(busy.getsockname()[1])
        proc = serve(db, port, tmp_path)
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: the port is taken" in stderr
    assert len(stderr.strip().splitlines()) == 1
