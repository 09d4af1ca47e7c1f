"""Fixtures of the receiver tests: loopback HTTP receivers, closed at the end of each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.http_receiver import LocalReceiver, Received, ReceiverFactory, Reply


@pytest.fixture
def receiver() -> Iterator[ReceiverFactory]:
    """Factory: ``receiver(default=Reply(200))`` starts a LocalReceiver on 127.0.0.1:0."""
    started: list[LocalReceiver] = []

    def make(default: Reply | Callable[[Received], Reply] | None = None) -> LocalReceiver:
        r = LocalReceiver(default)
        started.append(r)
        return r

    yield make
    for r in started:
        r.close()
