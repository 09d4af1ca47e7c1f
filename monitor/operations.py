"""What people and rollout controllers do with signals: gate, acknowledge, resume, silence.

The HTTP API (``monitor/api/``) and the command line (``driftgate ack|resume|silence|gate``)
both call these functions, so each rule lives once.

**Gate: which signals count for a scope.** A query fixes some segment dimensions, e.g.
``region=eu-west&cohort=free``; a signal's scope fixes some too (none for the global scope
``*``). A signal in force *counts* for the query when the two do not contradict each other:
every dimension fixed by both has the same value. So

* a global signal counts for every query;
* ``region=eu-west`` counts for ``region=eu-west``, ``region=eu-west&cohort=free`` and for
  ``cohort=free`` (whose traffic includes eu-west's free users);
* ``region=eu-west,cohort=free`` counts for that leaf, for ``region=eu-west`` and for
  ``cohort=free`` (rolling out a whole region moves that cohort too), not for
  ``region=us-east``;
* an overflow value (``~overflow``, segments beyond the cardinality cap) matches any value.

Query keys that are not segment dimensions (``segments.dimensions``; e.g. ``model`` when the
monitor does not segment by model) cannot narrow anything: they are reported as ignored.
The state is the worst signal that counts: ``halt`` if a HALT is in force (acknowledged or
not — only a resume lifts it), else ``warn`` if a WARN is, else ``ok``. Silences mute
notifications only; they never change a gate.

**Lifecycle.** ``acknowledge``: a person owns a WARN or HALT in force (it stays in force).
``resume``: a person lifts an acknowledged HALT. Both record who and why.

>>> covers({"region": "eu-west"}, {"region": "eu-west", "cohort": "free"})
True
>>> covers({"region": "eu-west", "cohort": "free"}, {"region": "eu-west"})
True
>>> covers({"region": "eu-west", "cohort": "free"}, {"region": "eu-west", "cohort": "pro"})
False
>>> covers({}, {"region": "us-east"}), covers({"region": "~overflow"}, {"region": "x"})
(True, True)
>>> parse_duration("1h30m"), parse_duration("2d"), parse_duration("45s")
(5400.0, 172800.0, 45.0)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from monitor.errors import EXIT_CONFIG, DriftgateError, StoreError
from monitor.events import Level
from monitor.router.matchers import Matcher, parse_matchers
from monitor.segments import GLOBAL_KEY, OVERFLOW
from monitor.store import HistoryStore

__all__ = [
    "EXIT_GATE_HALT",
    "EXIT_GATE_WARN",
    "ConflictError",
    "GateDecision",
    "GateState",
    "InvalidRequestError",
    "NotFoundError",
    "NotReadyError",
    "OperationError",
    "acknowledge",
    "covers",
    "create_silence",
    "evaluate_gate",
    "expire_silence",
    "get_signal",
    "given_up",
    "iso_ms",
    "list_signals",
    "list_silences",
    "parse_duration",
    "parse_time",
    "resume",
    "segment_labels",
    "signal_view",
    "silence_view",
]

EXIT_GATE_WARN = 10  # `driftgate gate`: a WARN counts for the scope
EXIT_GATE_HALT = 11  # `driftgate gate`: a HALT counts for the scope


class OperationError(DriftgateError):
    """A request that cannot be carried out as asked (CLI exit 2, HTTP 4xx)."""

    exit_code = EXIT_CONFIG
    status = 400


class InvalidRequestError(OperationError):
    """A missing or malformed value (HTTP 422)."""

    status = 422


class NotFoundError(OperationError):
    """No such signal or silence (HTTP 404)."""

    status = 404


class ConflictError(OperationError):
    """The transition is not allowed from the current state (HTTP 409)."""

    status = 409


class NotReadyError(StoreError):
    """The history store holds no monitor run yet: nothing to judge a scope on (HTTP 503)."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as RFC 3339 UTC.

    >>> iso_ms(1795392000123)
    '2026-11-23T00:00:00.123Z'
    """
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value: str | None, name: str) -> int | None:
    """An RFC 3339 time or epoch milliseconds as epoch ms (naive times are UTC).

    >>> parse_time("2026-11-23T00:00:00Z", "since"), parse_time("17", "since")
    (1795392000000, 17)
    """
    if value is None or value == "":
        return None
    if value.isdigit():
        return int(value)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"bad {name} {value!r}: use an RFC 3339 time (2026-11-23T10:00:00Z) or epoch ms"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1000)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1h30m``, ``1d`` as seconds (> 0)."""
    compact = text.replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InvalidRequestError(f"bad duration {text!r}: use e.g. 90s, 30m, 2h, 1h30m or 1d")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidRequestError(f"bad duration {text!r}: must be longer than 0")
    return seconds


def segment_labels(segment: str) -> dict[str, str]:
    """The dimension values a segment key fixes.

    >>> segment_labels("region=eu-west,cohort=free"), segment_labels("*")
    ({'region': 'eu-west', 'cohort': 'free'}, {})
    """
    if segment == GLOBAL_KEY or not segment:
        return {}
    return dict(part.split("=", 1) for part in segment.split(",") if "=" in part)


def covers(signal_labels: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """Does a signal whose scope fixes ``signal_labels`` count for ``query``?

    Yes unless a dimension both fix has different values (see the module docstring).
    """
    for key, value in signal_labels.items():
        asked = query.get(key)
        if asked is not None and value != asked and value != OVERFLOW:
            return False
    return True


def _require_text(**values: str) -> None:
    for name, value in values.items():
        if not value or not value.strip():
            raise InvalidRequestError(f"{name} is required: say who you are and why")


# -- signals ----------------------------------------------------------------------------------


def _score(row: Mapping[str, Any], effects: Mapping[str, float]) -> float:
    found = [abs(effects[e]) for e in row["signal"].evidence if e in effects]
    return round(max(found), 4) if found else 0.0


def signal_view(
    row: Mapping[str, Any], effects: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The JSON form of one ``HistoryStore.signal_states()`` row: the signal, its lifecycle
    and its ``score`` (largest |shift| in sigmas among its evidence; 0 when unknown)."""
    sig = row["signal"]
    return {
        **sig.as_dict(),
        "level": sig.level.value,
        "state": row["state"],
        "in_force": bool(row["active"]),
        "score": _score(row, effects or {}),
        "time": iso_ms(sig.ts_ms),
        "acked_by": row.get("acked_by"),
        "acked_at": iso_ms(row.get("acked_at")),
        "ack_comment": row.get("ack_comment"),
        "ended_by": row.get("ended_by"),
        "ended_at": iso_ms(row.get("ended_at")),
        "end_comment": row.get("end_comment"),
    }


def _views(store: HistoryStore, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    effects = store.drift_effects(e for r in rows for e in r["signal"].evidence)
    return [signal_view(r, effects) for r in rows]


def list_signals(store: HistoryStore, include_ended: bool = False) -> list[dict[str, Any]]:
    """Signals in force (or every signal), oldest first, as :func:`signal_view`."""
    return _views(store, store.signal_states(include_ended=include_ended))


def _row(store: HistoryStore, signal_id: str) -> dict[str, Any]:
    row = store.signal_state(signal_id)
    if row is None:
        raise NotFoundError(
            f"no signal {signal_id!r} (list them with `driftgate status` or GET /v1/signals)"
        )
    return row


def get_signal(store: HistoryStore, signal_id: str) -> dict[str, Any]:
    """One signal with its lifecycle and its transitions (who did what, when, why)."""
    view = _views(store, [_row(store, signal_id)])[0]
    view["transitions"] = [
        {
            "kind": tr["kind"],
            "actor": tr["actor"],
            "comment": tr["comment"],
            "at": iso_ms(tr["at_ms"]),
            "at_ms": tr["at_ms"],
        }
        for tr in store.transitions(signal_id)
    ]
    return view


def _ended(row: Mapping[str, Any]) -> ConflictError:
    return ConflictError(
        f"signal {row['id']} is no longer in force ({row['state']}"
        + (f" by {row['ended_by']}" if row.get("ended_by") else "")
        + "); nothing to change"
    )


def acknowledge(store: HistoryStore, signal_id: str, actor: str, comment: str) -> dict[str, Any]:
    """A person takes ownership of a WARN or HALT in force; it stays in force."""
    _require_text(actor=actor, comment=comment)
    row = _row(store, signal_id)
    if not row["active"]:
        raise _ended(row)
    if row["state"] == "acknowledged":
        raise ConflictError(
            f"signal {signal_id} is already acknowledged by {row['acked_by']}"
            + f"; resume it to lift the {row['level']}"
        )
    store.transition(signal_id, "ACK", actor.strip(), comment.strip())
    return get_signal(store, signal_id)


def resume(store: HistoryStore, signal_id: str, actor: str, comment: str) -> dict[str, Any]:
    """A person lifts an acknowledged WARN or HALT: rollouts of its scope may proceed again.

    A WARN pauses an Argo rollout (inconclusive) just as a HALT stops it, so both are lifted
    the same way: acknowledge (own it), then resume (say why it is safe)."""
    _require_text(actor=actor, comment=comment)
    row = _row(store, signal_id)
    if not row["active"]:
        raise _ended(row)
    if row["state"] != "acknowledged":
        raise ConflictError(
            f"{row['level']} {signal_id} is not acknowledged: acknowledge it first "
            f"(`driftgate ack {signal_id}` or POST /v1/signals/{signal_id}/ack), then resume"
        )
    store.transition(signal_id, "RESUMED", actor.strip(), comment.strip())
    return get_signal(store, signal_id)


# -- gate -------------------------------------------------------------------------------------


class GateState(StrEnum):
    """What a rollout controller should do: proceed, pause for a person, or stop."""

    OK = "ok"
    WARN = "warn"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The state of one scope and the signals in force that count for it (worst first)."""

    state: GateState
    scope: dict[str, str]
    ignored: dict[str, str]
    signals: list[dict[str, Any]] = field(default_factory=list)
    checked_at_ms: int = 0

    @property
    def score(self) -> float:
        return max((s["score"] for s in self.signals), default=0.0)

    @property
    def reason(self) -> str:
        """One line: the worst signal, its scope and reason ("" when ok)."""
        if not self.signals:
            return ""
        s = self.signals[0]
        more = f" (+{len(self.signals) - 1} more)" if len(self.signals) > 1 else ""
        return f"{s['level']} {s['segment']}: {s['reason']} [signal {s['id']}]{more}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "halt": self.state is GateState.HALT,
            "score": self.score,
            "reason": self.reason,
            "scope": self.scope,
            "ignored": self.ignored,
            "signals": self.signals,
            "checked_at": iso_ms(self.checked_at_ms),
            "checked_at_ms": self.checked_at_ms,
        }


def evaluate_gate(
    store: HistoryStore,
    query: Mapping[str, str | None],
    dimensions: Sequence[str],
    now_ms: int | None = None,
) -> GateDecision:
    """The gate state of the scope ``query`` (see the module docstring for the rule).

    Raises :class:`NotReadyError` when no monitor run ever wrote to the store: a gate that
    has watched nothing must not say ``ok``.
    """
    asked = {k: v for k, v in query.items() if v}
    scope = {k: v for k, v in asked.items() if k in dimensions}
    ignored = {k: v for k, v in asked.items() if k not in dimensions}
    if store.totals()["runs"] == 0:
        raise NotReadyError(
            f"no monitor run has written to the history store {store.path} yet: start "
            "`driftgate run` with the same history.url or history.path (the gate will not guess)"
        )
    rows = [r for r in store.signal_states() if covers(r["signal"].labels, scope)]
    rows.sort(key=lambda r: (-r["signal"].level.rank, -r["signal"].ts_ms, r["id"]))
    levels = {r["level"] for r in rows}
    state = (
        GateState.HALT
        if Level.HALT.value in levels
        else GateState.WARN
        if Level.WARN.value in levels
        else GateState.OK
    )
    return GateDecision(
        state=state,
        scope=scope,
        ignored=ignored,
        signals=_views(store, rows),
        checked_at_ms=_now_ms() if now_ms is None else now_ms,
    )


# -- silences ---------------------------------------------------------------------------------


def silence_view(row: Mapping[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """The JSON form of one stored silence, with its state at ``now_ms``."""
    now = _now_ms() if now_ms is None else now_ms
    state = (
        "expired" if row["ends_ms"] <= now else "pending" if row["starts_ms"] > now else "active"
    )
    return {
        "id": row["id"],
        "matchers": [str(Matcher.from_dict(m)) for m in row["matchers"]],
        "state": state,
        "starts_at": iso_ms(row["starts_ms"]),
        "ends_at": iso_ms(row["ends_ms"]),
        "starts_ms": row["starts_ms"],
        "ends_ms": row["ends_ms"],
        "author": row["author"],
        "comment": row["comment"],
        "created_at": iso_ms(row["created_ms"]),
    }


def list_silences(store: HistoryStore, include_expired: bool = False) -> list[dict[str, Any]]:
    """Silences, newest first; by default only those pending or active."""
    now = _now_ms()
    views = [silence_view(r, now) for r in store.silences()]
    return views if include_expired else [v for v in views if v["state"] != "expired"]


def given_up(store: HistoryStore, limit: int = 20) -> dict[str, Any]:
    """Notifications a receiver gave up on (never silent: also logged as ERRORs and counted
    in ``driftgate.notifications.given_up``): how many ended ``failed`` (delivered nowhere
    by that receiver) or ``fallback`` (handed to its fallback receiver), and the newest
    ``limit`` of them with receiver, reason and time. ``driftgate status`` and
    ``GET /v1/status`` show this."""
    counts = store.notification_counts()
    recent = [
        {**r, "given_up_at": iso_ms(r["given_up_ms"])}
        for r in store.given_up_notifications(limit=limit)
    ]
    return {
        "failed": sum(n for (_, state), n in counts.items() if state == "failed"),
        "fallback": sum(n for (_, state), n in counts.items() if state == "fallback"),
        "recent": recent,
    }


def create_silence(
    store: HistoryStore,
    matchers: Sequence[str],
    *,
    author: str,
    comment: str,
    duration_s: float | None = None,
    starts_ms: int | None = None,
    ends_ms: int | None = None,
) -> dict[str, Any]:
    """Mute notifications of alerts matching every matcher (``label=value``, ``!=``, ``=~``,
    ``!~``) from ``starts_ms`` (default now) for ``duration_s`` or until ``ends_ms``."""
    _require_text(author=author, comment=comment)
    if not matchers:
        raise InvalidRequestError("a silence needs at least one matcher, e.g. region=eu-west")
    parsed = parse_matchers(matchers)
    now = _now_ms()
    start = now if starts_ms is None else starts_ms
    if (duration_s is None) == (ends_ms is None):
        raise InvalidRequestError("give exactly one of a duration (e.g. 2h) or an end time")
    end = ends_ms if ends_ms is not None else start + int(float(duration_s or 0) * 1000)
    if end <= start:
        raise InvalidRequestError("a silence must end after it starts")
    if end <= now:
        raise InvalidRequestError("a silence must end in the future")
    sid = store.add_silence(
        [m.as_dict() for m in parsed], start, end, author.strip(), comment.strip()
    )
    return _silence(store, sid)


def _silence(store: HistoryStore, silence_id: str) -> dict[str, Any]:
    for row in store.silences():
        if row["id"] == silence_id:
            return silence_view(row)
    raise NotFoundError(
        f"no silence {silence_id!r} (list them with `driftgate silence list` or GET /v1/silences)"
    )


def expire_silence(store: HistoryStore, silence_id: str) -> dict[str, Any]:
    """End a silence now; an already expired one is a conflict, an unknown one not found."""
    view = _silence(store, silence_id)
    if view["state"] == "expired":
        raise ConflictError(f"silence {silence_id} already expired at {view['ends_at']}")
    store.expire_silence(silence_id)
    return _silence(store, silence_id)
