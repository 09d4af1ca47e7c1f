"""GET /v1/gate (Argo Rollouts web metric) and the Flagger webhooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.events import Level
from monitor.pipeline import Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import grid_stream, to_bytes
from tests.unit.api.helpers import AUTH, api, raise_signal, settings


def state(client_store: HistoryStore, query: str) -> str:
    r = api(client_store).get(f"/v1/gate?{query}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def test_clear_store_is_ok_with_the_full_body(store: HistoryStore, run: str) -> None:
    r = api(store).get("/v1/gate?region=eu-west&cohort=free&model=ranker")
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "ok"
    assert body["halt"] is False
    assert body["signals"] == []
    assert body["scope"] == {"region": "eu-west", "cohort": "free"}
    assert body["ignored"] == {"model": "ranker"}  # not a segment dimension here
    assert body["checked_at"].endswith("Z")


def test_leaf_warn_counts_for_its_leaf_and_the_rollouts_that_contain_it(
    store: HistoryStore, run: str
) -> None:
    raise_signal(store, run, Level.WARN, {"region": "eu-west", "cohort": "free"})
    assert state(store, "region=eu-west&cohort=free") == "warn"
    assert state(store, "region=eu-west") == "warn"  # the region's rollout moves that cohort
    assert state(store, "cohort=free") == "warn"
    assert state(store, "") == "warn"  # the whole fleet
    assert state(store, "region=eu-west&cohort=pro") == "ok"
    assert state(store, "region=us-east&cohort=free") == "ok"


def test_region_halt_covers_every_cohort_of_the_region_only(store: HistoryStore, run: str) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    raise_signal(store, run, Level.WARN, {"region": "eu-west", "cohort": "free"})
    body = api(store).get("/v1/gate?region=eu-west&cohort=free").json()
    assert body["state"] == "halt"
    assert body["halt"] is True
    assert [s["level"] for s in body["signals"]] == ["HALT", "WARN"]  # worst first
    assert body["signals"][0]["id"] == halt.id
    assert body["score"] == 2.5
    assert halt.id in body["reason"]
    assert state(store, "region=eu-west&cohort=enterprise") == "halt"
    assert state(store, "region=us-east&cohort=free") == "ok"


def test_global_halt_covers_everything(store: HistoryStore, run: str) -> None:
    raise_signal(store, run, Level.HALT, {})
    assert state(store, "region=ap-south&cohort=pro") == "halt"
    assert state(store, "cohort=free") == "halt"


def test_acknowledged_halt_still_halts_and_resume_clears_it(store: HistoryStore, run: str) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west", "cohort": "free"})
    client = api(store)
    body = {"actor": "alice", "comment": "looking"}
    assert client.post(f"/v1/signals/{halt.id}/ack", json=body, headers=AUTH).status_code == 200
    assert state(store, "region=eu-west&cohort=free") == "halt"
    body = {"actor": "alice", "comment": "bad feature flag reverted"}
    assert client.post(f"/v1/signals/{halt.id}/resume", json=body, headers=AUTH).status_code == 200
    assert state(store, "region=eu-west&cohort=free") == "ok"


def test_model_narrows_when_it_is_a_segment_dimension(store: HistoryStore) -> None:
    run = store.start_run("logs")
    # a store written by a monitor that segments by model: signal labels carry it
    raise_signal(store, run, Level.HALT, {"model": "ranker", "region": "eu-west"})
    client = api(store, segments={"dimensions": ["model", "region"]})
    assert client.get("/v1/gate?model=ranker&region=eu-west").json()["state"] == "halt"
    assert client.get("/v1/gate?model=other&region=eu-west").json()["state"] == "ok"


def test_empty_history_is_a_503_not_an_ok(store: HistoryStore) -> None:
    r = api(store).get("/v1/gate?region=eu-west")
    assert r.status_code == 503
    assert "no monitor run has written" in r.json()["error"]


def test_unreachable_store_is_a_503_with_a_json_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    store = HistoryStore(path)
    client = api(store)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()  # the history path is now a directory: SQLite cannot open it
    r = client.get("/v1/gate?region=eu-west")
    assert r.status_code == 503
    assert r.json()["error"].startswith("history store")
    assert client.get("/healthz").status_code == 503


def test_gate_on_a_store_written_by_the_monitor(tmp_path: Path) -> None:
    stream = to_bytes(grid_stream(1200, shift_segment=("eu-west", "pro"), shift_at=700, shift=2.0))
    store = HistoryStore(tmp_path / "h.db")
    cfg = settings(source={"batch_size": 300}, detection={"warmup": 400})
    Monitor(cfg, ListSource(stream, name="logs"), store, MemoryDeadLetters(), [MemorySink()]).run()
    client = api(store)
    assert client.get("/v1/gate?region=eu-west&cohort=pro").json()["state"] == "halt"
    assert client.get("/v1/gate?region=us-east&cohort=free").json()["state"] == "ok"
    store.close()


# -- Flagger -------------------------------------------------------------------------------


def flagger(meta: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc",
        "metadata": meta or {"region": "eu-west", "cohort": "free"},
    }


def test_flagger_gate_is_200_when_clear_and_403_with_reason_when_halted(
    store: HistoryStore, run: str
) -> None:
    client = api(store)
    r = client.post("/v1/flagger/gate", json=flagger())
    assert r.status_code == 200
    assert r.json()["state"] == "ok"
    assert r.json()["canary"] == "test/podinfo"
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    r = client.post("/v1/flagger/gate", json=flagger())
    assert r.status_code == 403
    assert halt.id in r.json()["error"]
    assert "test/podinfo" in r.json()["error"]
    other = client.post("/v1/flagger/gate", json=flagger({"region": "us-east"}))
    assert other.status_code == 200


def test_flagger_gate_warn_passes_unless_block_on_warn(store: HistoryStore, run: str) -> None:
    raise_signal(store, run, Level.WARN, {"region": "eu-west", "cohort": "free"})
    client = api(store)
    r = client.post("/v1/flagger/gate", json=flagger())
    assert (r.status_code, r.json()["state"]) == (200, "warn")
    strict = flagger({"region": "eu-west", "cohort": "free", "block_on": "warn"})
    assert client.post("/v1/flagger/gate", json=strict).status_code == 403


def test_flagger_rollback_is_200_only_while_a_halt_is_active(store: HistoryStore, run: str) -> None:
    client = api(store)
    r = client.post("/v1/flagger/rollback", json=flagger())
    assert r.status_code == 404
    assert r.json()["rollback"] is False
    raise_signal(store, run, Level.WARN, {"region": "eu-west", "cohort": "free"})
    assert client.post("/v1/flagger/rollback", json=flagger()).status_code == 404
    raise_signal(store, run, Level.HALT, {"region": "eu-west", "cohort": "free"})
    r = client.post("/v1/flagger/rollback", json=flagger())
    assert r.status_code == 200
    assert r.json()["rollback"] is True


@pytest.mark.parametrize("path", ["/v1/flagger/gate", "/v1/flagger/rollback"])
def test_flagger_payload_without_name_is_a_422(store: HistoryStore, run: str, path: str) -> None:
    r = api(store).post(path, json={"namespace": "test"})
    assert r.status_code == 422
    assert "name" in r.json()["error"]


def test_empty_parameters_narrow_nothing(store: HistoryStore, run: str) -> None:
    """Argo templates pass unset args as empty values: ``cohort=`` means every cohort."""
    raise_signal(store, run, Level.HALT, {"region": "eu-west", "cohort": "pro"})
    body = api(store).get("/v1/gate?region=eu-west&cohort=").json()
    assert (body["state"], body["scope"]) == ("halt", {"region": "eu-west"})
