"""Fixtures of the API tests: a real SQLite history store in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import HistoryStore
from tests.unit.api.helpers import seed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    s = HistoryStore(tmp_path / "history.db")
    yield s
    s.close()


@pytest.fixture
def run(store: HistoryStore) -> str:
    """A store with one run over every segment and no signal yet; the run id."""
    return seed(store)
