"""`driftgate ack | resume | silence | gate` through Typer's CliRunner on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.events import Level, Signal
from monitor.store import HistoryStore
from tests.unit.api.helpers import raise_signal, seed


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./driftgate.yaml of the developer's
    monkeypatch.setenv("COLUMNS", "250")
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    seed(store)
    store.close()
    return path


def halt_in(db: Path, labels: dict[str, str], level: Level = Level.HALT) -> Signal:
    store = HistoryStore(db)
    try:
        run = store.start_run("logs")
        return raise_signal(store, run, level, labels)
    finally:
        store.close()


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_gate_exit_codes_and_json(db: Path) -> None:
    code, out, _ = cli("gate", "--db", str(db), "--region", "eu-west", "--cohort", "free")
    assert (code, out.split()[0]) == (0, "ok")
    halt = halt_in(db, {"region": "eu-west"})
    code, out, _ = cli("gate", "--db", str(db), "--region", "eu-west", "--cohort", "free")
    assert code == 11
    assert out.startswith("halt region=eu-west,cohort=free")
    assert halt.id in out
    halt_in(db, {"region": "us-east", "cohort": "pro"}, Level.WARN)
    code, out, _ = cli("gate", "--db", str(db), "--region", "us-east", "--json")
    assert code == 10
    body = json.loads(out)
    assert (body["state"], body["scope"]) == ("warn", {"region": "us-east"})


def test_ack_then_resume_lifts_the_halt(db: Path) -> None:
    halt = halt_in(db, {"region": "eu-west"})
    code, _, err = cli("resume", halt.id, "--db", str(db), "--by", "bob", "--comment", "ok")
    assert code == 2
    assert f"acknowledge it first (`driftgate ack {halt.id}`" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = cli("ack", halt.id, "--db", str(db), "--by", "alice", "-m", "looking")
    assert code == 0
    assert f"acknowledged HALT {halt.id} (region=eu-west) by alice" in out
    code, out, _ = cli("resume", halt.id, "--db", str(db), "--by", "bob", "-m", "fixed", "--json")
    assert code == 0
    body = json.loads(out)
    assert (body["state"], body["ended_by"], body["end_comment"]) == ("resumed", "bob", "fixed")
    assert [t["kind"] for t in body["transitions"]] == ["ACK", "RESUMED"]
    assert cli("gate", "--db", str(db), "--region", "eu-west")[0] == 0


def test_ack_needs_who_and_why_and_a_known_signal(db: Path) -> None:
    code, _, err = cli("ack", "deadbeefdeadbeef", "--db", str(db), "--by", "a", "-m", "b")
    assert code == 2
    assert "no signal 'deadbeefdeadbeef'" in err
    assert "Traceback" not in err
    halt = halt_in(db, {"region": "eu-west"})
    code, _, err = cli("ack", halt.id, "--db", str(db), "--by", " ", "-m", "b")
    assert code == 2
    assert "actor is required" in err
    assert cli("ack", halt.id, "--db", str(db), "--by", "a")[0] == 2  # --comment missing


def test_silence_add_list_expire(db: Path) -> None:
    code, out, _ = cli(
        "silence", "add", "region=eu-west", "severity=critical", "--duration", "2h",
        "--by", "alice", "--comment", "migration", "--db", str(db), "--json",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert created["matchers"] == ["region=eu-west", "severity=critical"]
    assert created["ends_ms"] - created["starts_ms"] == 7_200_000
    code, out, _ = cli("silence", "list", "--db", str(db))
    assert code == 0
    assert created["id"] in out
    assert "migration" in out
    code, out, _ = cli("silence", "expire", created["id"], "--db", str(db))
    assert (code, f"silence {created['id']} expired") == (0, out.split(" at ")[0])
    code, out, _ = cli("silence", "list", "--db", str(db), "--json")
    assert (code, out) == (0, "")
    code, out, _ = cli("silence", "list", "--all", "--db", str(db), "--json")
    assert json.loads(out)["state"] == "expired"
    code, _, err = cli("silence", "expire", created["id"], "--db", str(db))
    assert code == 2
    assert "already expired" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["region"], "bad matcher 'region'"),
        (["region=eu", "--duration", "forever"], "bad duration 'forever'"),
    ],
)
def test_bad_silences_are_one_line_exit_2(db: Path, args: list[str], needle: str) -> None:
    code, _, err = cli("silence", "add", *args, "--by", "a", "-m", "b", "--db", str(db))
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_missing_history_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("gate", "--db", str(tmp_path / "none.db"), "--region", "x")
    assert code == 2
    assert "no drift history at" in err
