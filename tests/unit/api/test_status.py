"""GET /v1/status (with the fleet budget), /v1/history, /healthz and error shapes."""

from __future__ import annotations

from monitor.detection import fleet_budget
from monitor.events import Level
from monitor.store import HistoryStore
from tests.unit.api.helpers import api, raise_signal, settings


def test_status_shows_totals_signals_and_the_budget_split(store: HistoryStore, run: str) -> None:
    raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    body = api(store).get("/v1/status").json()
    assert body["totals"]["runs"] == 1
    assert body["segments"] == 16
    assert (body["halts"], body["warns"]) == (1, 0)
    assert body["detection"]["mode"] == "calibrated"
    expected = fleet_budget(settings()).describe()
    assert body["budget"] == expected
    assert body["budget"]["split"].startswith("additive")
    assert body["detection"]["target_arl0"] == float(f"{expected['target_arl0']:.3g}")
    assert body["mutations"] == "token"
    assert api(store, token=None).get("/v1/status").json()["mutations"].startswith("disabled")


def test_basic_mode_status(store: HistoryStore, run: str) -> None:
    body = api(store, detection={"mode": "basic"}).get("/v1/status").json()
    assert body["detection"] == {"mode": "basic", "detector": "adwin", "params": {}}


def test_history_filters_like_the_cli(store: HistoryStore, run: str) -> None:
    a = raise_signal(store, run, Level.WARN, {"region": "eu-west"})
    b = raise_signal(store, run, Level.HALT, {"region": "us-east"})
    client = api(store)
    every = client.get("/v1/history").json()
    assert every["count"] == 4  # two drift events, two signals
    only = client.get("/v1/history?kind=HALT").json()["items"]
    assert [i["id"] for i in only] == [b.id]
    eu = client.get("/v1/history?region=eu-west&kind=WARN").json()["items"]
    assert [i["id"] for i in eu] == [a.id]
    since = client.get(f"/v1/history?since={b.ts_ms}&kind=drift").json()["items"]
    assert [i["ts_ms"] for i in since] == [b.ts_ms]
    assert client.get("/v1/history?limit=1").json()["count"] == 1
    bad = client.get("/v1/history?since=yesterday")
    assert bad.status_code == 422
    assert "bad since 'yesterday'" in bad.json()["error"]
    assert client.get("/v1/history?kind=nope").status_code == 422


def test_healthz_and_unknown_paths(store: HistoryStore, run: str) -> None:
    client = api(store)
    assert client.get("/healthz").json() == {"status": "ok", "runs": 1, "history": store.path}
    r = client.get("/v2/whatever")
    assert r.status_code == 404
    assert "docs/api.md" in r.json()["error"]


def test_public_api_of_the_package() -> None:
    import monitor.api

    assert monitor.api.__all__ == ["create_app"]
