"""Build the router's receivers (notifiers) from ``router.receivers`` in the settings.

>>> from monitor.config import RouterSettings
>>> rs = RouterSettings.model_validate({"receivers": [
...     {"name": "console", "kind": "stdout"},
...     {"name": "oncall", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s"},
... ]})
>>> sorted((name, type(n).__name__) for name, n in build_notifiers(rs).items())
[('console', 'StdoutNotifier'), ('oncall', 'WebhookNotifier')]
"""

from __future__ import annotations

from monitor.config import ReceiverSettings, RouterSettings, SourceSettings
from monitor.kafka_client import make_producer
from monitor.sinks.alertmanager import AlertmanagerNotifier
from monitor.sinks.jsonl import JsonlNotifier
from monitor.sinks.kafka_notifier import KafkaNotifier
from monitor.sinks.notifier import Notifier
from monitor.sinks.pagerduty import EVENTS_URL, PagerDutyNotifier
from monitor.sinks.slack import SlackNotifier
from monitor.sinks.stdout import StdoutNotifier
from monitor.sinks.webhook import WebhookNotifier

__all__ = ["build_notifier", "build_notifiers"]


def build_notifier(r: ReceiverSettings, source: SourceSettings | None = None) -> Notifier:
    """One notifier; the settings were validated (a url/path/key is there when needed).

    ``source`` holds the Kafka connection a ``kafka`` receiver uses."""
    if r.kind == "kafka":
        assert r.topic is not None
        conn = source if source is not None else SourceSettings()  # type: ignore[call-arg]
        return KafkaNotifier(
            r.name, r.topic, lambda: make_producer(conn), timeout_s=max(r.timeout_s, 10.0)
        )
    if r.kind == "stdout":
        return StdoutNotifier(r.name)
    if r.kind == "jsonl":
        assert r.path is not None
        return JsonlNotifier(r.name, r.path)
    if r.kind == "webhook":
        assert r.url is not None
        secret = r.secret.get_secret_value() if r.secret is not None else None
        return WebhookNotifier(r.name, r.url, secret=secret, timeout_s=r.timeout_s)
    if r.kind == "alertmanager":
        assert r.url is not None
        return AlertmanagerNotifier(
            r.name,
            r.url,
            timeout_s=r.timeout_s,
            resolve_window_s=r.resolve_window_s,
            generator_url=r.generator_url,
        )
    if r.kind == "pagerduty":
        assert r.routing_key is not None
        return PagerDutyNotifier(
            r.name,
            routing_key=r.routing_key.get_secret_value(),
            url=r.url or EVENTS_URL,
            source=r.source,
            timeout_s=r.timeout_s,
        )
    assert r.kind == "slack"
    assert r.url is not None
    return SlackNotifier(r.name, r.url, timeout_s=r.timeout_s, min_interval_s=r.min_interval_s)


def build_notifiers(
    settings: RouterSettings, source: SourceSettings | None = None
) -> dict[str, Notifier]:
    """Every configured receiver's notifier, by name."""
    return {r.name: build_notifier(r, source) for r in settings.receivers}
