"""Silences over HTTP: create, list, expire; validation and auth."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.store import HistoryStore
from tests.unit.api.helpers import AUTH, api


def body(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "matchers": ["region=eu-west", "severity=~critical|warning"],
        "duration": "2h",
        "author": "alice",
        "comment": "planned migration of eu-west",
    }
    data.update(over)
    return data


def test_create_list_expire(store: HistoryStore, run: str) -> None:
    client = api(store)
    r = client.post("/v1/silences", json=body(), headers=AUTH)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/v1/silences/{created['id']}"
    assert created["state"] == "active"
    assert created["matchers"] == ["region=eu-west", "severity=~critical|warning"]
    assert created["ends_ms"] - created["starts_ms"] == 2 * 3600 * 1000
    listed = client.get("/v1/silences").json()
    assert [s["id"] for s in listed["silences"]] == [created["id"]]
    gone = client.delete(f"/v1/silences/{created['id']}", headers=AUTH)
    assert gone.status_code == 200
    assert gone.json()["state"] == "expired"
    assert client.get("/v1/silences").json()["count"] == 0
    assert client.get("/v1/silences?all=true").json()["count"] == 1
    again = client.delete(f"/v1/silences/{created['id']}", headers=AUTH)
    assert again.status_code == 409
    assert client.delete("/v1/silences/nope", headers=AUTH).status_code == 404


def test_end_time_instead_of_duration(store: HistoryStore, run: str) -> None:
    r = api(store).post(
        "/v1/silences",
        json=body(duration=None, starts_at="2026-01-01T00:00:00Z", ends_at="2099-01-01T00:00:00Z"),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert r.json()["ends_at"] == "2099-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"matchers": ["region"]}, "bad matcher 'region'"),
        ({"matchers": []}, "matchers"),
        ({"duration": "soon"}, "bad duration 'soon'"),
        ({"ends_at": "2099-01-01T00:00:00Z"}, "exactly one of"),
        ({"duration": None}, "exactly one of"),
        ({"duration": None, "ends_at": "2001-01-01T00:00:00Z"}, "must end"),
        ({"author": ""}, "author"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_silences_are_422(
    store: HistoryStore, run: str, over: dict[str, Any], needle: str
) -> None:
    r = api(store).post("/v1/silences", json=body(**over), headers=AUTH)
    assert r.status_code == 422
    assert needle in r.json()["error"]
    assert store.silences() == []


def test_silences_need_the_token(store: HistoryStore, run: str) -> None:
    client = api(store)
    assert client.post("/v1/silences", json=body()).status_code == 401
    created = client.post("/v1/silences", json=body(), headers=AUTH).json()
    assert client.delete(f"/v1/silences/{created['id']}").status_code == 401
