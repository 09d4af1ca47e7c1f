"""Inference logs from Kafka, through a kafka-python consumer group.

Offsets are owned by the history store: the checkpoint writes the next offset of every
partition in the same transaction as the batch's results. On every partition assignment the
source seeks to the stored offsets (the "storing offsets outside Kafka" pattern of Kafka's
consumer docs), so a restarted or rebalanced monitor neither skips nor double-counts; the
seek happens in :meth:`KafkaSource.poll`, after the monitor has claimed the partitions at
this member's group generation and reloaded its state (``on_assign``), and every
checkpoint is fenced by :meth:`KafkaSource.fence`.
After each checkpoint the same offsets are committed to the consumer group too, so lag
tools keep working. Auto-commit is off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from monitor.config import SourceSettings
from monitor.errors import SourceError
from monitor.events import Position
from monitor.kafka_client import make_consumer
from monitor.sources.base import RawRecord
from monitor.store.fencing import Fence

__all__ = ["KafkaSource"]

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records what the group did; the work happens in :meth:`KafkaSource.poll`.

    kafka-python 3.x runs these on the loop that drives heartbeats: a blocking callback can
    get the member evicted. So an assignment only pauses the new partitions (nothing is
    fetched from a stale position) and queues them; the poll loop claims them, reloads the
    state from the store, seeks to the stored offsets and resumes them. A loss (session
    expired, fenced, unknown member) is not a revocation: nothing may be written for those
    partitions any more, and the next checkpoint would be refused anyway.
    """

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._source.new_partitions -= set(revoked)  # assigned and taken back before a poll
        log.info("partitions revoked: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked))

    def on_partitions_lost(self, lost: Any) -> None:
        self._source.new_partitions -= set(lost)
        log.warning(
            "partitions lost (session expired or fenced: another member may own them now): "
            "%s; nothing more is written for them",
            sorted(f"{tp.topic}[{tp.partition}]" for tp in lost),
        )

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._source.assigned_once = True
        if assigned:
            self._source.consumer.pause(*assigned)
            self._source.new_partitions |= set(assigned)
        log.info(
            "partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )


class KafkaSource:
    """A consumer-group member reading ``settings.topics``."""

    def __init__(self, settings: SourceSettings, label_topics: list[str] | None = None) -> None:
        self.settings = settings
        self.name = "kafka:" + ",".join(settings.topics)
        self.label_sources = set(label_topics or [])
        self.topics = list(settings.topics) + sorted(self.label_sources - set(settings.topics))
        self.stored: dict[tuple[str, int], int] = {}
        self.consumer = make_consumer(
            settings,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_size,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )
        try:
            known = self.consumer.topics()
        except KafkaError as exc:
            raise SourceError(f"cannot list Kafka topics: {type(exc).__name__}: {exc}") from None
        missing = [t for t in self.topics if t not in known]
        if missing:
            self.consumer.close()
            raise SourceError(
                f"Kafka topic(s) not found: {', '.join(missing)} "
                "(create them or fix source.topics / labels.topics)"
            )
        self.known_topics: set[str] = set(known)
        self.new_partitions: set[TopicPartition] = set()
        #: called from :meth:`poll` with newly assigned partitions, returns where to seek
        #: (the monitor claims them and reloads its state first); default: stored offsets
        self.on_assign: Callable[[set[tuple[str, int]]], dict[tuple[str, int], int]] = (
            lambda _parts: self.stored
        )
        self._consumed = 0
        self.assigned_once = False

    @property
    def exhausted(self) -> bool:
        return False

    @property
    def waiting(self) -> bool:
        """True until the group has assigned partitions at least once (a restart after a
        crash waits for the dead member's session to expire first)."""
        return not self.assigned_once

    @property
    def progress(self) -> int:
        return self._consumed

    @property
    def total(self) -> int | None:
        return None

    def partitions(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this member holds now (roll-up windows wait for each
        of them, or for it to go idle)."""
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        self.stored = {k: v for k, v in offsets.items() if k[0] in self.topics}
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))

    def rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        """Read the held partitions again from ``offsets`` (the store's), or from their
        beginning where it has none: records fetched meanwhile are dropped."""
        self.stored.update({k: v for k, v in offsets.items() if k[0] in self.topics})
        for tp in self.consumer.assignment():
            nxt = offsets.get((tp.topic, tp.partition))
            if nxt is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, nxt)

    def all_partitions(self) -> set[tuple[str, int]]:
        """Every (topic, partition) of the topics this group reads, whoever holds it (the
        roll-up windows wait for all of them; the lowest one's owner judges them)."""
        out: set[tuple[str, int]] = set()
        for topic in self.topics:
            for p in self.consumer.partitions_for_topic(topic) or ():
                out.add((topic, int(p)))
        return out

    def fence(self) -> Fence:
        """This member at its current group generation, with the partitions it holds: a
        checkpoint under it is refused once a newer generation owns one of them."""
        meta = self.consumer.group_metadata()
        return Fence(
            member=str(meta.member_id),
            generation=int(meta.generation_id),
            partitions=frozenset(self.partitions()),
        )

    def _take_assigned(self) -> set[tuple[str, int]]:
        """Seek the partitions assigned since the last poll to where the monitor says (the
        store's offsets) and resume them; their keys."""
        fresh, self.new_partitions = self.new_partitions, set()
        fresh &= set(self.consumer.assignment())  # a later rebalance may have taken some back
        keys = {(tp.topic, tp.partition) for tp in fresh}
        try:
            offsets = self.on_assign(keys)
        except BaseException:  # e.g. the store is away: claim them on a later poll
            self.new_partitions |= fresh
            raise
        self.stored.update({k: v for k, v in offsets.items() if k in keys})
        for tp in fresh:
            nxt = offsets.get((tp.topic, tp.partition))
            if nxt is not None:
                self.consumer.seek(tp, nxt)
        self.consumer.resume(*fresh)
        return keys

    def poll(self, max_records: int) -> list[RawRecord]:
        try:
            batches = self.consumer.poll(
                timeout_ms=self.settings.poll_timeout_ms, max_records=max_records
            )
        except KafkaError as exc:
            raise SourceError(f"Kafka poll failed: {type(exc).__name__}: {exc}") from None
        fresh = self._take_assigned() if self.new_partitions else set()
        out: list[RawRecord] = []
        for tp, records in batches.items():
            if (tp.topic, tp.partition) in fresh:
                continue  # fetched before the seek: read again from the stored offset
            for r in records:
                value = r.value if r.value is not None else b""
                out.append(RawRecord(value, Position(tp.topic, tp.partition, r.offset), r.key))
        self._consumed += len(out)
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.stored.update(offsets)
        if not offsets:
            return
        try:
            self.consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                }
            )
        except KafkaError as exc:
            # The history store holds the truth; the group offset is for lag monitoring.
            log.warning("consumer-group commit failed (history is intact): %s", exc)

    def close(self) -> None:
        try:
            self.consumer.close()
        except KafkaError as exc:  # pragma: no cover - best effort at shutdown
            log.warning("closing the Kafka consumer: %s", exc)
