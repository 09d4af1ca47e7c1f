"""The HTTP API over a PostgreSQL history store: every test of tests/unit/api/ that works
on the ``store`` fixture, collected here again with ``store`` on a fresh PostgreSQL database
(the gate, metrics, signals, silences and status read and write it as on SQLite)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from monitor.store import HistoryStore
from tests.unit.api import test_gate, test_metrics, test_signals, test_silences, test_status
from tests.unit.api.conftest import run  # noqa: F401 - the seeded run, on this store

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

for _module in (test_gate, test_metrics, test_signals, test_silences, test_status):
    for _name, _test in vars(_module).items():
        if (
            _name.startswith("test_")
            and callable(_test)
            and "store" in inspect.signature(_test).parameters
        ):
            globals()[_name] = _test


@pytest.fixture
def store(postgres_url: str) -> Iterator[HistoryStore]:
    s = HistoryStore(postgres_url)
    yield s
    s.close()
