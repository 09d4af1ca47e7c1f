"""GET /metrics: Prometheus text, every segment's series always present."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from monitor.events import Level
from monitor.store import HistoryStore
from tests.unit.api.helpers import AUTH, all_segments, api, raise_signal, segment_key


def scrape(store: HistoryStore) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r = api(store).get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def key(labels: dict[str, str], **extra: str) -> tuple[tuple[str, str], ...]:
    seg = segment_key(labels)
    scope = "segment" if len(labels) == 2 else next(iter(labels)) if labels else "global"
    full = {
        "segment": seg,
        "scope": scope,
        "region": labels.get("region", ""),
        "cohort": labels.get("cohort", ""),
        **extra,
    }
    return tuple(sorted(full.items()))


def test_every_segment_has_zero_series_when_clear(store: HistoryStore, run: str) -> None:
    m = scrape(store)
    segments = all_segments()
    assert len(segments) == 16
    for name in ("driftgate_halt", "driftgate_warn", "driftgate_drift_score"):
        assert m[name] == {key(lab): 0.0 for lab in segments}, name
    assert m["driftgate_segment_records_total"][key({})] == 100.0
    assert m["driftgate_records_total"][()] == 900.0
    assert m["driftgate_late_total"][()] == 3.0
    assert m["driftgate_runs_total"][()] == 1.0
    assert m["driftgate_signals_total"] == {(("level", "WARN"),): 0.0, (("level", "HALT"),): 0.0}
    assert m["driftgate_silences_active"][()] == 0.0


def test_halt_is_one_for_its_scope_and_zero_again_after_resume(
    store: HistoryStore, run: str
) -> None:
    leaf = {"region": "eu-west", "cohort": "free"}
    halt = raise_signal(store, run, Level.HALT, leaf, effect=-3.25)
    raise_signal(store, run, Level.WARN, {"region": "us-east"})
    m = scrape(store)
    assert m["driftgate_halt"][key(leaf)] == 1.0
    assert m["driftgate_drift_score"][key(leaf)] == 3.25
    assert m["driftgate_warn"][key({"region": "us-east"})] == 1.0
    assert sum(m["driftgate_halt"].values()) == 1.0
    assert m["driftgate_signals_in_force"][(("level", "HALT"),)] == 1.0
    assert m["driftgate_drift_events_total"][()] == 2.0

    client = api(store)
    who = {"actor": "alice", "comment": "fixed"}
    client.post(f"/v1/signals/{halt.id}/ack", json=who, headers=AUTH)
    assert scrape(store)["driftgate_halt"][key(leaf)] == 1.0  # acknowledged still halts
    client.post(f"/v1/signals/{halt.id}/resume", json=who, headers=AUTH)
    m = scrape(store)
    assert m["driftgate_halt"][key(leaf)] == 0.0  # still present, now 0
    assert m["driftgate_drift_score"][key(leaf)] == 0.0
    assert m["driftgate_signals_total"][(("level", "HALT"),)] == 1.0


def test_model_dimension_becomes_a_label(store: HistoryStore) -> None:
    run = store.start_run("logs")
    raise_signal(store, run, Level.HALT, {"model": "ranker", "region": "eu-west"})
    r = api(store, segments={"dimensions": ["model", "region"]}).get("/metrics")
    halts = [
        s
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
        if s.name == "driftgate_halt"
    ]
    assert [(s.labels["model"], s.labels["region"], s.value) for s in halts] == [
        ("ranker", "eu-west", 1.0)
    ]
