"""Signals and their lifecycle over HTTP: list, one, ack, resume; auth of mutations."""

from __future__ import annotations

import pytest

from monitor.events import Level
from monitor.store import HistoryStore
from tests.unit.api.helpers import AUTH, TOKEN, api, raise_signal

WHO = {"actor": "alice@example.com", "comment": "on it"}


def test_list_one_and_all(store: HistoryStore, run: str) -> None:
    warn = raise_signal(store, run, Level.WARN, {"region": "eu-west", "cohort": "free"})
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west", "cohort": "free"})
    client = api(store)
    active = client.get("/v1/signals").json()
    assert [s["id"] for s in active["signals"]] == [halt.id]  # the HALT superseded the WARN
    assert active["count"] == 1
    every = client.get("/v1/signals?all=true").json()["signals"]
    assert {s["id"]: s["state"] for s in every} == {warn.id: "superseded", halt.id: "active"}
    one = client.get(f"/v1/signals/{halt.id}").json()
    assert one["level"] == "HALT"
    assert one["in_force"] is True
    assert one["score"] == 2.5
    assert one["transitions"] == []
    missing = client.get("/v1/signals/0000000000000000")
    assert missing.status_code == 404
    assert "GET /v1/signals" in missing.json()["error"]


def test_ack_then_resume_records_who_and_why(store: HistoryStore, run: str) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    client = api(store)
    r = client.post(f"/v1/signals/{halt.id}/ack", json=WHO, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["acked_by"]) == ("acknowledged", "alice@example.com")
    assert r.json()["in_force"] is True
    again = client.post(f"/v1/signals/{halt.id}/ack", json=WHO, headers=AUTH)
    assert again.status_code == 409
    assert "already acknowledged by alice@example.com" in again.json()["error"]
    why = {"actor": "bob", "comment": "rollback of the tokenizer fixed it"}
    r = client.post(f"/v1/signals/{halt.id}/resume", json=why, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert (body["state"], body["in_force"], body["ended_by"]) == ("resumed", False, "bob")
    assert [(t["kind"], t["actor"], t["comment"]) for t in body["transitions"]] == [
        ("ACK", "alice@example.com", "on it"),
        ("RESUMED", "bob", "rollback of the tokenizer fixed it"),
    ]
    assert client.get("/v1/signals").json()["count"] == 0
    late = client.post(f"/v1/signals/{halt.id}/resume", json=why, headers=AUTH)
    assert late.status_code == 409
    assert "no longer in force" in late.json()["error"]


def test_resume_before_ack_is_a_409_that_says_what_to_do(store: HistoryStore, run: str) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    r = api(store).post(f"/v1/signals/{halt.id}/resume", json=WHO, headers=AUTH)
    assert r.status_code == 409
    assert f"POST /v1/signals/{halt.id}/ack" in r.json()["error"]


def test_an_acknowledged_warn_is_resumed_and_the_gate_opens(store: HistoryStore, run: str) -> None:
    """A WARN pauses a rollout as inconclusive: a person lifts it the same way as a HALT."""
    warn = raise_signal(store, run, Level.WARN, {"region": "eu-west"})
    client = api(store)
    assert client.get("/v1/gate", params={"region": "eu-west"}).json()["state"] == "warn"
    early = client.post(f"/v1/signals/{warn.id}/resume", json=WHO, headers=AUTH)
    assert early.status_code == 409
    assert client.post(f"/v1/signals/{warn.id}/ack", json=WHO, headers=AUTH).status_code == 200
    r = client.post(f"/v1/signals/{warn.id}/resume", json=WHO, headers=AUTH)
    assert r.status_code == 200
    assert client.get("/v1/gate", params={"region": "eu-west"}).json()["state"] == "ok"


def test_unknown_signal_is_a_404(store: HistoryStore, run: str) -> None:
    r = api(store).post("/v1/signals/nope/ack", json=WHO, headers=AUTH)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "body", [{"actor": "alice"}, {"actor": "", "comment": "x"}, {"comment": "x"}, {}]
)
def test_actor_and_comment_are_required(store: HistoryStore, run: str, body: object) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    r = api(store).post(f"/v1/signals/{halt.id}/ack", json=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["error"].startswith("bad request:")
    assert store.transitions() == []


def test_blank_actor_is_refused(store: HistoryStore, run: str) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    r = api(store).post(
        f"/v1/signals/{halt.id}/ack", json={"actor": "  ", "comment": "x"}, headers=AUTH
    )
    assert r.status_code == 422
    assert "actor is required" in r.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_missing_or_wrong_token_is_a_401(
    store: HistoryStore, run: str, headers: dict[str, str]
) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    r = api(store).post(f"/v1/signals/{halt.id}/ack", json=WHO, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in r.json()["error"]
    assert store.signal_state(halt.id)["state"] == "active"  # type: ignore[index]


def test_without_a_configured_token_mutations_are_refused_403(
    store: HistoryStore, run: str
) -> None:
    halt = raise_signal(store, run, Level.HALT, {"region": "eu-west"})
    client = api(store, token=None)
    r = client.post(f"/v1/signals/{halt.id}/ack", json=WHO, headers=AUTH)
    assert r.status_code == 403
    assert "set api.token" in r.json()["error"]
    assert client.get("/v1/signals").status_code == 200  # reads stay open
    silence = {"matchers": ["region=eu-west"], "duration": "1h", "author": "a", "comment": "b"}
    assert client.post("/v1/silences", json=silence, headers=AUTH).status_code == 403
