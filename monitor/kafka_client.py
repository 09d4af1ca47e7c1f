"""Building kafka-python clients from settings, with broker errors turned into one line.

kafka-python 3.x raises ``KafkaTimeoutError: Unable to bootstrap`` from a constructor when no
broker answers within ``bootstrap_timeout_ms``; we set that from
``source.connect_timeout_s`` and say what to check.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from monitor.config import SourceSettings
from monitor.errors import DriftgateError, SinkError, SourceError

__all__ = ["common_config", "make_consumer", "make_producer", "unreachable"]


def common_config(s: SourceSettings) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap_servers": [b.strip() for b in s.bootstrap_servers.split(",") if b.strip()],
        "client_id": s.client_id,
        "security_protocol": s.security_protocol,
        "bootstrap_timeout_ms": int(s.connect_timeout_s * 1000),
        "reconnect_backoff_max_ms": 2000,
    }
    if s.sasl_mechanism:
        cfg["sasl_mechanism"] = s.sasl_mechanism
        cfg["sasl_plain_username"] = s.sasl_username
        cfg["sasl_plain_password"] = s.sasl_password.get_secret_value() if s.sasl_password else None
    return cfg


def unreachable(s: SourceSettings, exc: Exception, what: str) -> str:
    return (
        f"cannot reach Kafka at {s.bootstrap_servers} for the {what} within "
        f"{s.connect_timeout_s:g}s ({type(exc).__name__}: {exc}); check source.bootstrap_servers "
        "and that the broker is up"
    )


def make_consumer(s: SourceSettings, **extra: Any) -> KafkaConsumer:
    try:
        return KafkaConsumer(**common_config(s), **extra)
    except KafkaError as exc:
        raise SourceError(unreachable(s, exc, "consumer")) from None


def make_producer(s: SourceSettings, error: type[DriftgateError] = SinkError) -> KafkaProducer:
    try:
        return KafkaProducer(
            **common_config(s),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_block_ms=int(s.connect_timeout_s * 1000),
        )
    except KafkaError as exc:
        raise error(unreachable(s, exc, "producer")) from None
