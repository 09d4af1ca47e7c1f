"""The driftgate command, run as a real subprocess in a scratch working directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from monitor.schema import json_schema_text
from tests.factories import grid_stream, to_bytes


def driftgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_jsonl(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_run_then_history_json_gives_events_and_signals_with_positions(tmp_path: Path) -> None:
    lines = to_bytes(grid_stream(1000, shift_segment=("ap-south", "free"), shift_at=600))
    lines.insert(5, b"{broken")
    write_jsonl(tmp_path / "logs.jsonl", lines)

    # 600 records per segment before the shift: the self-learned references need a shorter
    # learning window than the default 1,000
    (tmp_path / "driftgate.yaml").write_text("detection:\n  warmup: 300\n")
    r = driftgate("run", "--source", "file:logs.jsonl", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "HALT" in r.stdout
    assert "1 dead letters" in r.stderr

    h = driftgate("history", "--json", cwd=tmp_path)
    assert h.returncode == 0, h.stderr
    rows = [json.loads(line) for line in h.stdout.splitlines()]
    kinds = {row["kind"] for row in rows}
    assert "drift" in kinds
    assert "HALT" in kinds
    for row in rows:
        assert {"kind", "region", "cohort", "position", "id", "segment"} <= set(row)
        assert row["position"]["file"].endswith("logs.jsonl")
        line_no = row["position"]["line"]
        assert 1 <= line_no <= len(lines)
        assert lines[line_no - 1] != b"{broken"
    halt = next(
        r
        for r in rows
        if r["kind"] == "HALT" and r["region"] == "ap-south" and r["cohort"] == "free"
    )
    assert halt["position"]["line"] > 600 * 9
    dead = [
        json.loads(x) for x in (tmp_path / "driftgate-deadletter.jsonl").read_text().splitlines()
    ]
    assert dead == [dead[0]]
    assert dead[0]["raw"] == "{broken"
    assert dead[0]["position"]["line"] == 6
    assert "invalid JSON" in dead[0]["reason"]

    # a second run on the same file resumes after the last checkpointed line: nothing new
    again = driftgate("run", "--source", "file:logs.jsonl", "--no-progress", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["records"] == 0

    table = driftgate("history", "--kind", "HALT", "--region", "ap-south", cwd=tmp_path)
    assert table.returncode == 0
    assert "region=ap-south,cohort=free" in table.stdout.replace("\n", "")

    status = driftgate("status", "--json", cwd=tmp_path)
    active = [json.loads(x) for x in status.stdout.splitlines()]
    assert any(
        a["segment"] == "region=ap-south,cohort=free" and a["kind"] == "HALT" for a in active
    )


def test_missing_input_file_is_one_line_exit_3(tmp_path: Path) -> None:
    r = driftgate("run", "--source", "file:nope.jsonl", cwd=tmp_path)
    assert r.returncode == 3
    assert "input file not found: nope.jsonl" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_config_key_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "driftgate.yaml").write_text("segments:\n  dimensons: [region]\n")
    r = driftgate("run", "--source", "file:x.jsonl", cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown key 'segments.dimensons'" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_broker_is_one_line_exit_3(tmp_path: Path) -> None:
    started = time.monotonic()
    r = driftgate(
        "run",
        "--source",
        "kafka",
        cwd=tmp_path,
        env={
            "DRIFTGATE_SOURCE__BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "DRIFTGATE_SOURCE__CONNECT_TIMEOUT_S": "2",
        },
    )
    assert r.returncode == 3, r.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - started < 60


def test_history_without_a_store_says_what_to_do(tmp_path: Path) -> None:
    r = driftgate("history", cwd=tmp_path)
    assert r.returncode == 2
    assert "no drift history at driftgate.db" in r.stderr


def test_schema_and_version(tmp_path: Path) -> None:
    r = driftgate("schema", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout == json_schema_text()
    v = driftgate("--version", cwd=tmp_path)
    assert v.returncode == 0
    assert v.stdout.startswith("driftgate ")


def test_demo_halts_the_injected_segments_and_fans_out(tmp_path: Path) -> None:
    r = driftgate("demo", "--json", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(x) for x in r.stdout.splitlines()]
    summary = rows[-1]
    assert summary["kind"] == "summary"
    assert summary["records"] == 80_000
    halts = {row["segment"] for row in rows if row["kind"] == "HALT"}
    assert "region=eu-west,cohort=enterprise" in halts
    assert "region=ap-south" in halts  # the regional slowdown
    eu = {"region=eu-west,cohort=enterprise", "region=eu-west", "cohort=enterprise"}
    # every HALT is an incident segment or a roll-up containing one; us-east and the other
    # eu-west cohorts never halt
    assert all(h in eu or h.startswith(("region=ap-south", "cohort=")) or h == "*" for h in halts)
    assert not any(h.startswith("region=us-east") for h in halts)
    assert not halts & {"region=eu-west,cohort=free", "region=eu-west,cohort=pro"}
    assert (tmp_path / "driftgate-demo.db").is_file()
    # fan-out: HALTs grouped by region to the signed webhook, everything to the file;
    # the region HALT inhibits its cohorts' alerts
    fanout = next(row for row in rows if row["kind"] == "fanout")
    oncall = fanout["receivers"]["oncall"]
    assert {n["group"] for n in oncall} == {"region=eu-west", "region=ap-south"}
    assert {a for n in oncall for a in n["alerts"]} == {
        "HALT region=eu-west,cohort=enterprise",
        "HALT region=ap-south",
    }
    assert all(n["state"] == "delivered" for n in oncall)
    assert sorted(fanout["webhook_received"]) == sorted(n["id"] for n in oncall)
    muted = fanout["muted"]
    inhibited = {k for k, why in muted.items() if why == "inhibited by region=ap-south"}
    assert inhibited == {f"region=ap-south,cohort={c}" for c in ("free", "pro", "enterprise")}
    # roll-ups that only echo a narrower, earlier HALT on the same signal are explained
    assert muted["cohort=enterprise"] == "explained by region=eu-west,cohort=enterprise"
    for k, why in muted.items():
        if k in inhibited:
            continue
        assert why.startswith("explained by "), (k, why)
        src = why.removeprefix("explained by ")
        assert k == "*" or set(k.split(",")) < set(src.split(",")), (k, why)
    paged = {a for n in oncall for a in n["alerts"]}
    assert not any(a.split()[1] in muted for a in paged), "muted alerts are not paged"
    lines = (tmp_path / "driftgate-demo-notifications.jsonl").read_bytes().splitlines()
    assert {orjson.loads(x)["id"] for x in lines} == {n["id"] for n in fanout["receivers"]["file"]}


def test_sigterm_finishes_the_batch_commits_and_exits_0(tmp_path: Path) -> None:
    """A sidecar is stopped with SIGTERM on every deploy: nothing read may be lost."""
    lines = to_bytes(grid_stream(100))
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--source", "-", "--no-progress"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "DRIFTGATE_SOURCE__BATCH_SIZE": "100"},
    )
    assert proc.stdin is not None
    proc.stdin.write(b"".join(line + b"\n" for line in lines))
    proc.stdin.flush()
    db = tmp_path / "driftgate.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not db.exists():
        time.sleep(0.2)
    time.sleep(2.0)  # stdin stays open: the monitor now waits inside poll
    proc.send_signal(signal.SIGTERM)
    proc.stdin.close()  # lets the blocked read return, as a closing pipe would on shutdown
    proc.wait(timeout=60)
    assert proc.stderr is not None
    assert proc.stdout is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.stdout.close()
    assert proc.returncode == 0, err
    assert err.startswith("interrupted:") or "interrupted" in err
    st = driftgate("status", "--json", cwd=tmp_path)
    assert st.returncode == 0
    from monitor.store import HistoryStore

    store = HistoryStore(db)
    assert store.segment_counts()["*"] == len(lines)
    assert store.totals()["records"] == len(lines)


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_bad_time_filter_is_a_clear_error(tmp_path: Path, flag: str) -> None:
    write_jsonl(tmp_path / "l.jsonl", to_bytes(grid_stream(5)))
    assert driftgate("run", "--source", "file:l.jsonl", cwd=tmp_path).returncode == 0
    r = driftgate("history", flag, "last tuesday", cwd=tmp_path)
    assert r.returncode == 2
    assert f"bad {flag}" in r.stderr


def test_second_signal_exits_at_once_with_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--source", "-", "--no-progress"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    proc.stdin.write(b"".join(line + b"\n" for line in to_bytes(grid_stream(20))))
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "driftgate.db").exists():
        time.sleep(0.1)
    time.sleep(1.0)  # blocked reading stdin, which stays open
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    proc.stdin.close()
    proc.stderr.close()


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "l.jsonl",
        to_bytes(grid_stream(400, shift_segment=("eu-west", "pro"), shift_at=200)),
    )
    r = driftgate(
        "run",
        "--source",
        "file:l.jsonl",
        "--log-format",
        "json",
        "--json",
        "--no-progress",
        cwd=tmp_path,
        env={"DRIFTGATE_DETECTION__MODE": "basic"},
    )
    assert r.returncode == 0, r.stderr
    logs = [json.loads(line) for line in r.stderr.splitlines()]  # nothing but JSON on stderr
    assert logs, r.stderr
    assert all({"ts", "level", "logger", "message"} <= set(x) for x in logs)
    assert any("HALT" in x["message"] for x in logs)


def test_reference_build_skips_what_the_monitor_would_dead_letter(tmp_path: Path) -> None:
    """The profile is built from the records the monitor would watch: a record from the far
    future, or one that breaks the schema, is skipped and counted, never sampled."""
    records = grid_stream(40)
    future = dict(records[3], timestamp="9999-01-01T00:00:00Z")
    lines = [*to_bytes(records), orjson.dumps(future), b"{broken"]
    write_jsonl(tmp_path / "canary.jsonl", lines)
    built = driftgate(
        "reference", "build", "canary", "--source", "file:canary.jsonl", "--db", "h.db",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    out = json.loads(built.stdout)
    assert out["records"] == len(records)
    assert out["bad_records"] == 2
