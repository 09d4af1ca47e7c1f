"""Where driftgate's output goes: signal sinks, dead-letter sinks and alert receivers.

One per file; receivers (notifiers) share ``notifier.py`` and are driven by ``delivery.py``.
"""

from monitor.sinks.alertmanager import AlertmanagerNotifier
from monitor.sinks.base import DeadLetter, DeadLetterSink, MemoryDeadLetters, MemorySink, SignalSink
from monitor.sinks.deadletter_file import FileDeadLetters
from monitor.sinks.deadletter_kafka import KafkaDeadLetters
from monitor.sinks.delivery import (
    CircuitBreaker,
    Deliverer,
    DeliveryAttempt,
    DeliveryState,
    RetryPolicy,
)
from monitor.sinks.jsonl import JsonlSink
from monitor.sinks.kafka_control import KafkaControlSink
from monitor.sinks.notifier import HttpNotifier, MemoryNotifier, Notifier
from monitor.sinks.pagerduty import PagerDutyNotifier
from monitor.sinks.slack import SlackNotifier
from monitor.sinks.stdout import StdoutSink
from monitor.sinks.webhook import WebhookNotifier

__all__ = [
    "AlertmanagerNotifier",
    "CircuitBreaker",
    "DeadLetter",
    "DeadLetterSink",
    "Deliverer",
    "DeliveryAttempt",
    "DeliveryState",
    "FileDeadLetters",
    "HttpNotifier",
    "JsonlSink",
    "KafkaControlSink",
    "KafkaDeadLetters",
    "MemoryDeadLetters",
    "MemoryNotifier",
    "MemorySink",
    "Notifier",
    "PagerDutyNotifier",
    "RetryPolicy",
    "SignalSink",
    "SlackNotifier",
    "StdoutSink",
    "WebhookNotifier",
]
