"""Shared pytest fixtures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.kafka_broker import KafkaBroker, TopicFactory
from tests.postgres_server import PostgresServer

# =====================================================================================
# >>> Kafka: real single-node broker (tests/kafka_broker.py) ---------------------------
# One broker per test session. If it cannot start, every test that needs it ERRORS
# (pytest.fail) — never skips: CI (CI=true) must not pass with Kafka tests skipped.
# =====================================================================================


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A started single-node KRaft broker on 127.0.0.1, stopped at session end."""
    broker = KafkaBroker()
    try:
        broker.start()
    except Exception as exc:  # any start-up problem must fail the tests, never skip them
        broker.close()
        pytest.fail(f"could not start the Kafka test broker: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def kafka_topic(kafka_broker: KafkaBroker) -> TopicFactory:
    """Factory: ``kafka_topic(partitions=1, configs=None)`` creates a uniquely named topic."""

    def make(partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        kafka_broker.create_topic(name, partitions=partitions, configs=configs)
        return name

    return make


# <<< Kafka ----------------------------------------------------------------------------


# =====================================================================================
# >>> PostgreSQL: a real server (tests/postgres_server.py) ----------------------------
# One server per test session, one fresh database per test. If it cannot start, every
# test that needs it FAILS (never skips: `make system-deps` installs it), as for Kafka.
# =====================================================================================


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL server on 127.0.0.1 (a fresh cluster), stopped at session end."""
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        server.close()
        pytest.fail(f"could not start the PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the test server (dropped after the test)."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


# <<< PostgreSQL -----------------------------------------------------------------------
