"""The contract for the receivers that are not HTTP (stdout, jsonl, kafka), and the factory.

Every receiver kind the config accepts is built by ``build_notifiers`` into something with
the notifier protocol; a local receiver that cannot write raises a *retryable*
``DeliveryError`` (the outbox keeps the notification), never anything else.
"""

from __future__ import annotations

import io
import typing
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import ReceiverSettings, RouterSettings
from monitor.errors import SinkError
from monitor.router.model import AlertState, DeliveryError
from monitor.sinks.jsonl import JsonlNotifier
from monitor.sinks.kafka_notifier import KafkaNotifier
from monitor.sinks.notifier import example_notification
from monitor.sinks.receivers import build_notifiers
from monitor.sinks.stdout import StdoutNotifier

KIND_KEYS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"},
    "alertmanager": {"url": "http://127.0.0.1:9"},
    "pagerduty": {"routing_key": "0123456789abcdef0123456789abcdef"},
    "slack": {"url": "http://127.0.0.1:9/services/T/B/x"},
    "stdout": {},
    "jsonl": {"path": "notes.jsonl"},
    "kafka": {"topic": "driftgate.notifications"},
}


def test_every_configurable_kind_builds_a_notifier() -> None:
    kinds = typing.get_args(ReceiverSettings.model_fields["kind"].annotation)
    assert set(kinds) == set(KIND_KEYS), "a new receiver kind needs a row here"
    rs = RouterSettings.model_validate(
        {"receivers": [{"name": k, "kind": k, **v} for k, v in KIND_KEYS.items()]}
    )
    built = build_notifiers(rs)
    assert set(built) == set(KIND_KEYS)
    for name, n in built.items():
        assert n.name == name
        assert callable(n.notify)
        assert callable(n.close)
        n.close()


@pytest.mark.parametrize(
    "kind", ["webhook", "alertmanager", "slack", "pagerduty", "jsonl", "kafka"]
)
def test_a_receiver_without_its_address_is_a_config_error(kind: str) -> None:
    with pytest.raises(ValueError, match="needs"):
        ReceiverSettings.model_validate({"name": "r", "kind": kind})


def test_stdout_notifier_writes_one_line_per_notification_in_both_forms() -> None:
    text, js = io.StringIO(), io.StringIO()
    firing = example_notification()
    resolved = example_notification(AlertState.RESOLVED)
    for n in (firing, resolved):
        StdoutNotifier("console", stream=text).notify(n)
        StdoutNotifier("console", as_json=True, stream=js).notify(n)
    assert [line.split()[1] for line in text.getvalue().splitlines()] == ["firing", "resolved"]
    assert [orjson.loads(x)["id"] for x in js.getvalue().splitlines()] == [firing.id, resolved.id]


def test_jsonl_notifier_appends_and_an_unwritable_path_is_retryable(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    n = example_notification()
    JsonlNotifier("file", path).notify(n)
    JsonlNotifier("file", path).notify(n)
    assert [orjson.loads(x)["id"] for x in path.read_bytes().splitlines()] == [n.id, n.id]
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(DeliveryError) as exc:
        JsonlNotifier("file", blocked / "notes.jsonl").notify(n)
    assert exc.value.retryable
    assert "\n" not in str(exc.value)


class _Future:
    def get(self, timeout: float) -> None:
        return None


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> _Future:
        self.sent.append((topic, key, value, headers))
        return _Future()

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def test_kafka_notifier_keys_by_group_and_an_unreachable_broker_is_retryable() -> None:
    producer = _Producer()
    n = example_notification()
    KafkaNotifier("controllers", "t", lambda: producer).notify(n)
    [(topic, key, value, headers)] = producer.sent
    assert (topic, key.decode()) == ("t", n.group_key)
    assert orjson.loads(value)["schema_version"] == 1
    assert dict(headers)["driftgate-notification-id"] == n.id.encode()

    def down() -> Any:
        raise SinkError("cannot reach Kafka at localhost:1 for the producer within 1s")

    with pytest.raises(DeliveryError) as exc:
        KafkaNotifier("controllers", "t", down).notify(n)
    assert exc.value.retryable
    assert "controllers" in str(exc.value)
