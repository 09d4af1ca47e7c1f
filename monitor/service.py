"""Wiring: build the source, sinks and store named by the settings into a Monitor.

This module only assembles parts; the work happens in ``monitor.pipeline``.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack
from types import FrameType
from typing import Any

from monitor.config import Settings
from monitor.errors import EXIT_INTERRUPTED, SourceError
from monitor.kafka_client import make_producer
from monitor.pipeline import Monitor
from monitor.router.courier import Courier
from monitor.sinks import (
    FileDeadLetters,
    JsonlSink,
    KafkaControlSink,
    KafkaDeadLetters,
    SignalSink,
    StdoutSink,
)
from monitor.sinks.base import DeadLetterSink
from monitor.sinks.receivers import build_notifiers
from monitor.sources import DemoScenario, DemoSource, FileSource, KafkaSource, Source
from monitor.sources.merged import MergedFileSource
from monitor.store import HistoryStore

__all__ = ["build_monitor", "install_stop_handlers"]


def build_monitor(
    settings: Settings,
    stack: ExitStack,
    *,
    as_json: bool = False,
    scenario: DemoScenario | None = None,
) -> Monitor:
    """Open everything the settings name; ``stack`` closes it all in reverse order."""
    store = HistoryStore.from_settings(settings.history)
    stack.callback(store.close)
    src_cfg = settings.source
    source: Source
    dead: DeadLetterSink
    sinks: list[SignalSink] = []
    producer: Any = None
    if src_cfg.kind == "kafka":
        kafka_source = KafkaSource(src_cfg, settings.labels.topics)
        stack.callback(kafka_source.close)
        source = kafka_source
        producer = make_producer(src_cfg, error=SourceError)
        stack.callback(producer.close, timeout=5)
        dead = KafkaDeadLetters(producer, src_cfg.dead_letter_topic)
    elif src_cfg.kind == "file":
        file_source = FileSource(src_cfg.path)
        stack.callback(file_source.close)
        source = file_source
        if settings.labels.path:
            labels = FileSource(settings.labels.path)
            stack.callback(labels.close)
            source = MergedFileSource(
                file_source, labels, max_future_ms=int(src_cfg.max_future_s * 1000)
            )
        dead = FileDeadLetters(src_cfg.dead_letter_path)
    else:
        source = DemoSource(scenario)
        dead = FileDeadLetters(src_cfg.dead_letter_path)
    stack.callback(dead.close)

    sig_cfg = settings.signals
    if src_cfg.kind == "kafka":  # a missing output topic would block every send for a minute
        outputs = {
            "signals.control_topic": sig_cfg.control_topic,
            "source.dead_letter_topic": src_cfg.dead_letter_topic,
        }
        missing = [
            f"{name} {topic!r}"
            for name, topic in outputs.items()
            if topic and topic not in kafka_source.known_topics
        ]
        if missing:
            raise SourceError(
                f"Kafka topic(s) not found: {', '.join(missing)} "
                "(create them, or set signals.control_topic: null to send no control signals)"
            )
    if sig_cfg.stdout:
        sinks.append(StdoutSink(as_json=as_json))
    if sig_cfg.jsonl_path:
        sinks.append(JsonlSink(sig_cfg.jsonl_path))
    if sig_cfg.control_topic and producer is not None:
        sinks.append(KafkaControlSink(producer, sig_cfg.control_topic))
    courier: Courier | None = None
    if settings.router.receivers:
        courier = Courier(
            store,
            settings.router,
            build_notifiers(settings.router, settings.source),
            member=src_cfg.member_id,
        )
        stack.callback(courier.close)
    return Monitor(settings, source, store, dead, sinks, courier=courier)


def install_stop_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the batch in hand, checkpoint, exit 0. Second: exit now."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)  # the checkpoint is atomic: nothing half-written
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
