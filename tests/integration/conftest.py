"""Integration fixtures: a real Prometheus Alertmanager on loopback.

One ``prometheus-alertmanager`` per test session (installed from the Debian package by
``deploy/scripts/install-alertmanager.sh`` when missing), clustering off, with an inhibit
rule (critical mutes warning for the same ``region``) and a webhook receiver that posts to
a local collector. If it cannot be installed or started, every test that needs it FAILS
(pytest.fail) — never skips.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http_receiver import LocalReceiver, Received, Reply, free_port

AM_BIN = "/usr/bin/prometheus-alertmanager"
INSTALLER = Path(__file__).resolve().parents[2] / "deploy" / "scripts" / "install-alertmanager.sh"
READY_TIMEOUT_S = 30.0

AM_CONFIG = """\
route:
  receiver: collector
  group_by: [region]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: collector
    webhook_configs:
      - url: {collector}/alertmanager
        send_resolved: true
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [region]
"""


@dataclass
class Alertmanager:
    """A running Alertmanager: its base ``url``, version, start-up time and webhook collector."""

    url: str
    version: str
    startup_s: float
    collector: LocalReceiver

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (Alertmanager's view, with ``status``)."""
        r = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5)
        r.raise_for_status()
        out: list[dict[str, Any]] = r.json()
        return out

    def webhooks(self) -> list[Received]:
        """What Alertmanager's webhook receiver has posted to the collector so far."""
        with self.collector.lock:
            return list(self.collector.requests)


def _ensure_installed() -> None:
    if Path(AM_BIN).exists():
        return
    done = subprocess.run(
        ["bash", str(INSTALLER)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0 or not Path(AM_BIN).exists():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        pytest.fail(f"cannot install Alertmanager: {lines[-1]}", pytrace=False)


def _version() -> str:
    out = subprocess.run([AM_BIN, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return first[0] if first else "unknown"


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> float:
    start = time.monotonic()
    with httpx.Client(timeout=0.5) as client:
        while time.monotonic() - start < READY_TIMEOUT_S:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines() or ["no output"]
                raise RuntimeError(f"exited with {proc.returncode}: {tail[-1]}")
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"not ready after {READY_TIMEOUT_S:g} s (log: {log})")


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """A started Alertmanager on 127.0.0.1 (HA off), stopped by PID at session end."""
    _ensure_installed()
    work = tmp_path_factory.mktemp("alertmanager")
    collector = LocalReceiver(Reply(200))
    config = work / "am.yml"
    config.write_text(AM_CONFIG.format(collector=collector.url))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                AM_BIN,
                f"--config.file={config}",
                f"--storage.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        try:
            startup_s = _wait_ready(proc, url, log)
        except Exception as exc:  # any start-up problem must fail the tests, never skip them
            pytest.fail(f"could not start Alertmanager ({AM_BIN}): {exc}", pytrace=False)
        yield Alertmanager(url, _version(), startup_s, collector)
    finally:
        proc.terminate()  # by PID: only the process this fixture started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        collector.close()
        shutil.rmtree(work / "data", ignore_errors=True)
