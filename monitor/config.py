"""driftgate's settings: one typed, frozen object, parsed and validated once at the edge.

Settings come from, highest priority first:

1. environment variables ``DRIFTGATE_<SECTION>__<KEY>`` (e.g. ``DRIFTGATE_SOURCE__KIND=kafka``,
   ``DRIFTGATE_HISTORY__PATH=/var/lib/driftgate/history.db``);
2. the config file (YAML ``.yaml``/``.yml`` or TOML ``.toml``) given with ``--config``, or
   ``driftgate.yaml`` / ``driftgate.toml`` in the working directory when present;
3. the defaults below.

Lists in environment variables are JSON: ``DRIFTGATE_SOURCE__TOPICS='["logs-eu","logs-us"]'``.

>>> s = load_settings(overrides={"segments": {"dimensions": ["region"]}})
>>> s.segments.dimensions, s.detection.detector, s.history.path
(['region'], 'adwin', 'driftgate.db')
>>> load_settings(overrides={"segments": {"max_segments": 0}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor.errors.ConfigError: bad config: segments.max_segments = 0: Input should be greater ...
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from monitor.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILES",
    "ApiSettings",
    "BudgetSettings",
    "CategoricalSettings",
    "CrashPoint",
    "DecisionSettings",
    "DetectionSettings",
    "HistorySettings",
    "LabelSettings",
    "LoggingSettings",
    "MultivariateSettings",
    "ReceiverSettings",
    "RetrySettings",
    "RouteSettings",
    "RouterSettings",
    "Settings",
    "SignalSettings",
    "SourceSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILES = ("driftgate.yaml", "driftgate.yml", "driftgate.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Section):
    """Where inference logs come from."""

    kind: Literal["kafka", "file", "demo"] = "file"
    path: str = Field("-", description="JSON Lines file for kind=file; '-' reads stdin.")
    bootstrap_servers: str = "localhost:9092"
    topics: list[str] = Field(default_factory=lambda: ["inference-logs"], min_length=1)
    group_id: str = "driftgate"
    member_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description=(
            "This member's stable name in the fleet (default: the host name, i.e. the pod): "
            "the name its claims on signal and notification deliveries are held under. "
            "Give each member on one host its own."
        ),
    )
    client_id: str = "driftgate"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    connect_timeout_s: float = Field(15.0, gt=0, description="Give up reaching the broker after.")
    poll_timeout_ms: int = Field(500, ge=1)
    batch_size: int = Field(500, ge=1, description="Records per batch (and per checkpoint).")
    max_record_bytes: int = Field(1_048_576, ge=64)
    max_future_s: float = Field(
        86_400.0,
        gt=0,
        description="Records timestamped more than this far ahead of the wall clock go to "
        "the dead-letter sink (a year-9999 record must not drag event time forward).",
    )
    dead_letter_topic: str = "driftgate.deadletter"
    dead_letter_path: str = "driftgate-deadletter.jsonl"
    idle_exit_s: float | None = Field(
        None, gt=0, description="Kafka only: exit 0 after this long with no new records."
    )


class SegmentSettings(_Section):
    """How records are grouped into monitored segments."""

    dimensions: list[str] = Field(default_factory=lambda: ["region", "cohort"], min_length=1)
    rollups: bool = Field(True, description="Also watch global and per-dimension roll-ups.")
    max_segments: int = Field(1000, ge=1, description="Cardinality cap; beyond it: overflow.")
    window_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Roll-ups are judged on event-time windows this long (mergeable summaries).",
    )
    allowed_lateness_s: float = Field(
        10.0,
        ge=0,
        description="A window closes once every partition's event time is this far past its "
        "end; a record for a window already closed is late (counted, kept out of roll-ups).",
    )
    idle_s: float = Field(
        30.0,
        gt=0,
        description="A partition that delivered nothing for this long (wall clock) stops "
        "holding roll-up windows open.",
    )
    window_warmup: int = Field(
        10, ge=3, description="Windows a roll-up learns from before its detectors may fire."
    )
    window_k: float = Field(
        0.5, gt=0, le=3, description="CUSUM reference value of the window detectors (z units)."
    )


class BudgetSettings(_Section):
    """The fleet-wide false-alarm budget that sets every calibrated detector's ARL0."""

    false_halts_per_week: float = Field(1.0, gt=0, description="Across all segments x signals.")
    events_per_second: float = Field(100.0, gt=0, description="Expected record rate.")
    signals_per_record: int = Field(16, ge=1, description="Signals a record carries (estimate).")
    confirm_alarms: int = Field(1, ge=1, description="Alarms within confirm_within → a HALT.")
    confirm_within: int = Field(0, ge=0, description="Observations window of that rule.")


class CategoricalSettings(_Section):
    """Calibrated mode: the detectors of string features and the predicted class mix."""

    top_k: int = Field(8, ge=1, description="Categories tracked; the rest count as 'other'.")
    window: int = Field(100, ge=10, description="Observations per tumbling test window.")
    warmup: int = Field(5000, ge=100, description="Observations that learn the own-past mix.")


class MultivariateSettings(_Section):
    """Calibrated mode: joint drift of a record's numeric features, per segment.

    A River logistic regression learns "reference vs now" on the features (as quantile
    cells) and their pairwise products; the ranks of new vectors among a pool of vectors it
    never learned are tested by a calibrated CUSUM. About 30-50k observations/s per
    detector, so it watches the scopes listed here, every ``sample_every``-th record (its
    ARL0 counts its own observations)."""

    enabled: bool = True
    scopes: list[str] = Field(
        default_factory=lambda: ["segment"],
        description="Scopes watched: ['segment'] (leaf segments) or [] (none). Roll-ups are "
        "judged on event-time window summaries, which the joint detector has no form for.",
    )

    @field_validator("scopes")
    @classmethod
    def _leaf_only(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x != "segment"]
        if bad:
            raise ValueError(
                f"{bad[0]!r}: the multivariate detector watches leaf segments only "
                "(use ['segment'] or []); roll-ups are judged on event-time windows"
            )
        return v

    sample_every: int = Field(1, ge=1, description="Feed every n-th record of a segment.")
    block: int = Field(50, ge=10, le=1000, description="Vectors per CUSUM step.")
    warmup: int = Field(
        1000,
        ge=100,
        le=131_070,
        description="Vectors before testing: half reference, half first pool.",
    )
    cells: int = Field(
        256,
        ge=16,
        le=4096,
        description="Cell budget of the feature grid (6 levels for 3 features; 3-4 bytes each).",
    )


class DetectionSettings(_Section):
    """Which detectors watch every segment x signal.

    ``calibrated`` (default): CUSUMs calibrated to the ARL0 the fleet budget implies, against
    each segment's own past and, with ``reference``, against that stored profile; categorical
    detectors for categories. ``basic``: one River detector (``detector``) per signal.
    """

    mode: Literal["calibrated", "basic"] = "calibrated"
    detector: Literal["adwin", "page_hinkley", "kswin", "cusum"] = Field(
        "adwin", description="basic mode: the detector of every numeric (and rate) signal."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="basic mode: its params.")
    rate_detector: Literal["ddm", "eddm", "hddm_a", "hddm_w", "fhddm"] | None = Field(
        None, description="basic mode: a River rate detector for the 0/1 signals instead."
    )
    rate_params: dict[str, Any] = Field(
        default_factory=dict, description="basic mode: the rate detector's params."
    )
    categorical: CategoricalSettings = Field(
        default_factory=CategoricalSettings  # type: ignore[arg-type]
    )
    multivariate: MultivariateSettings = Field(
        default_factory=MultivariateSettings  # type: ignore[arg-type]
    )
    reference: str | None = Field(
        None, description="calibrated mode: name of a stored reference profile to anchor to."
    )
    target_arl0: float | None = Field(
        None, ge=10, description="Override the ARL0 the budget implies (per detector)."
    )
    k: float = Field(
        0.3,
        gt=0,
        le=3,
        description="CUSUM reference value, numeric signals (half the shift it is tuned for).",
    )
    rate_k: float = Field(
        0.25, gt=0, le=3, description="CUSUM reference value, 0/1 rates against a profile."
    )
    rate_ratio: float = Field(
        1.5,
        gt=1,
        le=10,
        description="Rise of a 0/1 rate the own-past Bernoulli CUSUM is tuned for (p -> r p).",
    )
    spread_ratio: float | None = Field(
        1.5,
        gt=1,
        le=10,
        description="Spread change the numeric spread CUSUM is tuned for (sigma -> r sigma "
        "and sigma -> sigma / r); null: no spread detector.",
    )
    budget: BudgetSettings = Field(default_factory=BudgetSettings)  # type: ignore[arg-type]
    warmup: int | None = Field(
        None,
        ge=0,
        description="Observations before a detector may fire (default: basic 200, "
        "calibrated 1000 — its learning window).",
    )
    confirm: int = Field(30, ge=1, description="Observations averaged to measure a change.")
    features: list[str] | None = Field(
        None, description="Numeric features to watch; null watches every numeric feature."
    )
    max_features: int = Field(64, ge=0, description="Cap on distinct feature signals.")


class DecisionSettings(_Section):
    """How drift events become WARN / HALT signals."""

    warn_effect: float = Field(0.5, ge=0, description="|shift| in pre-change sigmas for WARN.")
    halt_effect: float = Field(1.0, gt=0, description="|shift| in sigmas that HALTs at once.")
    rate_warn_ratio: float = Field(
        1.25, gt=1, description="0/1 rates: a rise by at least this factor raises WARN."
    )
    rate_halt_ratio: float = Field(
        2.0, gt=1, description="0/1 rates: a rise by at least this factor HALTs at once."
    )
    spread_warn_ratio: float = Field(
        1.3,
        gt=1,
        description="Numeric spread: a rise or fall (sigma after / before, or its inverse) "
        "by at least this factor raises WARN.",
    )
    spread_halt_ratio: float = Field(
        2.0, gt=1, description="Numeric spread: a change by at least this factor HALTs at once."
    )
    halt_after: int = Field(
        3, ge=1, description="WARN escalates to HALT after this many WARN-level events."
    )
    halt_within_s: float | None = Field(
        3600.0,
        gt=0,
        description="... counted within this much record time (None: no time limit).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> DecisionSettings:
        if self.halt_effect < self.warn_effect:
            raise ValueError(
                f"halt_effect ({self.halt_effect}) must be >= warn_effect ({self.warn_effect})"
            )
        if self.rate_halt_ratio < self.rate_warn_ratio:
            raise ValueError(
                f"rate_halt_ratio ({self.rate_halt_ratio}) must be >= rate_warn_ratio "
                f"({self.rate_warn_ratio})"
            )
        if self.spread_halt_ratio < self.spread_warn_ratio:
            raise ValueError(
                f"spread_halt_ratio ({self.spread_halt_ratio}) must be >= spread_warn_ratio "
                f"({self.spread_warn_ratio})"
            )
        return self


class SignalSettings(_Section):
    """Where scaling-halt signals go."""

    stdout: bool = True
    jsonl_path: str | None = Field(None, description="Append signals to this JSON Lines file.")
    control_topic: str | None = Field(
        "driftgate.control", description="Kafka control topic (kafka source only; null: off)."
    )


class LabelSettings(_Section):
    """Delayed ground-truth labels, joined to predictions by request id."""

    topics: list[str] = Field(
        default_factory=list, description="Kafka topics of label records (same consumer group)."
    )
    path: str | None = Field(
        None, description="JSON Lines file of labels, merged with the file source by time."
    )
    window_s: float = Field(86_400.0, gt=0, description="Labels later than this are ignored.")
    max_pending: int = Field(1_000_000, ge=1, description="Predictions kept waiting, at most.")


class ReceiverSettings(_Section):
    """One place notifications go (see docs/sinks.md for each kind's keys)."""

    name: str = Field(min_length=1)
    kind: Literal["webhook", "alertmanager", "pagerduty", "slack", "stdout", "jsonl", "kafka"]
    url: str | None = None
    secret: SecretStr | None = Field(None, description="webhook: HMAC-SHA256 signing key.")
    routing_key: SecretStr | None = Field(None, description="pagerduty: integration key.")
    path: str | None = Field(None, description="jsonl: file to append to.")
    topic: str | None = Field(None, description="kafka: topic (connection from `source`).")
    timeout_s: float = Field(5.0, gt=0)
    fallback: str | None = Field(None, description="Receiver used when this one gives up.")
    max_attempts: int | None = Field(
        None, ge=1, description="Attempts per notification, then give up (null: router.retry's)."
    )
    max_age_s: float | None = Field(
        None,
        gt=0,
        description="How long this receiver may be down: a notification still undelivered "
        "this long after enqueueing is given up (null: router.retry's).",
    )
    resolve_window_s: float | None = Field(
        300.0, gt=0, description="alertmanager: endsAt this far ahead for firing alerts."
    )
    generator_url: str | None = Field(None, description="alertmanager: link back to driftgate.")
    source: str = Field("driftgate", description="pagerduty: the event's source field.")
    min_interval_s: float = Field(1.0, ge=0, description="slack: least time between messages.")

    @model_validator(mode="after")
    def _needs(self) -> ReceiverSettings:
        needed = {
            "webhook": "url",
            "alertmanager": "url",
            "slack": "url",
            "pagerduty": "routing_key",
            "jsonl": "path",
            "kafka": "topic",
        }.get(self.kind)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"receiver {self.name!r} (kind {self.kind}) needs {needed!r}")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"receiver {self.name!r}: url must start with http:// or https://")
        return self


class RetrySettings(_Section):
    """How hard delivery tries a receiver (see docs/sinks.md, "Failures, retries, breaker,
    fallback"). ``max_attempts`` and ``max_age_s`` are the give-up horizon of every receiver
    that does not set its own."""

    base_s: float = Field(1.0, gt=0, description="Back-off scale: k-th failure waits ≤ base·2^k.")
    cap_s: float = Field(300.0, gt=0, description="Back-off ceiling.")
    max_attempts: int = Field(12, ge=1, description="Attempts per notification, then give up.")
    max_age_s: float = Field(
        3600.0, gt=0, description="Give up a notification this long after enqueueing."
    )
    breaker_failures: int = Field(5, ge=1, description="Failures in a row that open the breaker.")
    breaker_cooldown_s: float = Field(60.0, gt=0, description="Open → half-open after this.")

    @model_validator(mode="after")
    def _cap(self) -> RetrySettings:
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be >= base_s ({self.base_s})")
        return self


class RouteSettings(_Section):
    """A node of the routing tree (Alertmanager semantics)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = Field(None, description="Inherited from the parent when unset.")
    matchers: list[str] = Field(default_factory=list, description="label=value, =~, !=, !~")
    group_by: list[str] | None = Field(None, description="Labels that batch alerts together.")
    group_wait_s: float | None = Field(None, ge=0)
    repeat_interval_s: float | None = Field(None, gt=0)
    continue_: bool = Field(False, alias="continue")
    auto_resolve: bool | None = Field(
        None, description="Lift HALTs of this route automatically (default: only a person)."
    )
    routes: list[RouteSettings] = Field(default_factory=list)


class RouterSettings(_Section):
    """Alert routing: receivers, the routing tree, inhibition, rate limit."""

    receivers: list[ReceiverSettings] = Field(default_factory=list)
    route: RouteSettings = Field(
        default_factory=lambda: RouteSettings.model_validate(
            {"group_by": ["segment"], "group_wait_s": 0.0, "repeat_interval_s": 14_400.0}
        )
    )
    inhibit: bool = Field(True, description="A broader HALT mutes the narrower alerts.")
    rate_limit_per_min: int = Field(60, ge=1, description="Notifications per receiver/min.")
    retry: RetrySettings = Field(default_factory=RetrySettings)  # type: ignore[arg-type]
    tick_s: float = Field(
        1.0, gt=0, description="While no records arrive, retry pending deliveries this often."
    )
    resolve_quiet_s: float = Field(
        900.0,
        gt=0,
        description="auto_resolve routes: lift a signal once its scope had no drift this long.",
    )

    @model_validator(mode="after")
    def _receivers_exist(self) -> RouterSettings:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate receiver names: {', '.join(dupes)}")
        known = set(names)
        for r in self.receivers:
            if r.fallback is not None and r.fallback not in known:
                raise ValueError(f"receiver {r.name!r}: fallback {r.fallback!r} is not a receiver")

        def walk(node: RouteSettings, path: str) -> None:
            if node.receiver is not None and node.receiver not in known:
                raise ValueError(f"route {path}: receiver {node.receiver!r} is not defined")
            for i, child in enumerate(node.routes):
                walk(child, f"{path}.routes[{i}]")

        walk(self.route, "route")
        return self


class HistorySettings(_Section):
    """Where the drift history lives: a SQLite file (default) or a PostgreSQL database.

    ``url`` is a SQLAlchemy URL. ``postgresql://user@host:5432/db`` (or ``postgres://``,
    both with the psycopg 3 driver) is one database a fleet of driftgate processes shares;
    ``sqlite:///file.db`` is a file. Without ``url`` the history is the SQLite file ``path``
    (default ``driftgate.db``); setting both is an error. A password written in the URL is
    moved to ``password``, which is masked whenever settings are printed or stored; better,
    leave it out of the URL and set ``DRIFTGATE_HISTORY__PASSWORD``.

    >>> h = HistorySettings(url="postgres://dg:s3cret@db:5432/drift")
    >>> h.url, h.password, h.path
    ('postgres://dg@db:5432/drift', SecretStr('**********'), None)
    >>> h.location
    'postgres://dg:***@db:5432/drift'
    >>> h.model_dump(mode="json")["password"]
    '**********'
    >>> HistorySettings().location
    'driftgate.db'
    """

    url: str | None = Field(
        None,
        description="Database URL: postgresql://user@host:port/db or sqlite:///file "
        "(unset: the SQLite file `path`).",
    )
    password: SecretStr | None = Field(
        None, description="Password of the `url` database; set DRIFTGATE_HISTORY__PASSWORD."
    )
    path: str | None = Field(
        None, description="SQLite file of the drift history when `url` is unset (driftgate.db)."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, description="Give up reaching a PostgreSQL server after (exit 4)."
    )
    outage_wait_s: float = Field(
        300.0,
        ge=0,
        description=(
            "While running on Kafka: how long to wait for a history store that went away "
            "(a PostgreSQL restart) before giving up (exit 4); the batch in hand is read "
            "again from the last checkpoint once it is back."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _split_password(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        url, path = data.get("url"), data.get("path")
        if url is not None and path is not None:
            raise ValueError(
                f"history.url ({_HistoryUrl.masked(str(url))}) and history.path ({path}) are "
                "both set: keep one (url for PostgreSQL or sqlite:///file, path for a file)"
            )
        if url is None:
            data.setdefault("path", None)
            if data["path"] is None:
                data["path"] = "driftgate.db"
            return data
        bare, secret = _HistoryUrl.split(str(url))
        if secret is not None:
            if data.get("password") is not None:
                raise ValueError(
                    "history.url has a password and history.password is set: give it once"
                )
            data["url"], data["password"] = bare, secret
        return data

    def database_url(self) -> str:
        """The URL to connect to, password included (for the store only: never print it)."""
        if self.url is None:
            assert self.path is not None
            return self.path
        secret = self.password.get_secret_value() if self.password is not None else None
        return _HistoryUrl.join(self.url, secret)

    @property
    def location(self) -> str:
        """The history as people name it in messages: the SQLite file, or the URL with its
        password masked."""
        if self.url is None:
            assert self.path is not None
            return self.path
        return _HistoryUrl.masked(self.database_url())


class _HistoryUrl:
    """Parsing of ``history.url`` (SQLAlchemy's URL; imported when a URL is set)."""

    BACKENDS = ("sqlite", "postgresql", "postgres")

    @staticmethod
    def _parse(text: str) -> Any:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(text)
        except ArgumentError:
            raise ValueError(
                "history.url is not a database URL (use postgresql://user@host:port/db "
                "or sqlite:///file.db)"
            ) from None
        backend = url.get_backend_name()
        if backend not in _HistoryUrl.BACKENDS:
            raise ValueError(
                f"history.url: driftgate keeps its history in SQLite or PostgreSQL, not {backend}"
            )
        return url

    @staticmethod
    def split(text: str) -> tuple[str, str | None]:
        url = _HistoryUrl._parse(text)
        if url.password is None:
            return text, None
        from sqlalchemy.engine import URL

        bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database)
        bare = bare.update_query_dict(dict(url.query))
        return bare.render_as_string(hide_password=False), str(url.password)

    @staticmethod
    def join(text: str, password: str | None) -> str:
        url = _HistoryUrl._parse(text)
        if password is not None:
            url = url.set(password=password)
        return str(url.render_as_string(hide_password=False))

    @staticmethod
    def masked(text: str) -> str:
        try:
            return str(_HistoryUrl._parse(text).render_as_string(hide_password=True))
        except ValueError:
            return text.split("://")[0] + "://…"


#: Where ``faults.crash_at`` kills the monitor, in the order a batch passes them:
#: ``after-checkpoint`` — the batch is stored, nothing of it delivered yet;
#: ``signal-sent-unrecorded`` — a signal sink took the pending signals, the outbox does
#: not record it yet; ``notification-sent-unrecorded`` — a receiver accepted a
#: notification, its outbox row is not written yet; ``after-delivery-recorded`` — every
#: delivery of the batch is sent and recorded, the Kafka offsets are not committed yet.
CrashPoint = Literal[
    "after-checkpoint",
    "signal-sent-unrecorded",
    "notification-sent-unrecorded",
    "after-delivery-recorded",
]


class FaultSettings(_Section):
    """Fault injection for crash tests (never set in production)."""

    crash_at: CrashPoint | None = Field(
        None, description="Kill the process (exit 137, no cleanup) at this point of a batch."
    )
    crash_after_batches: int = Field(1, ge=1, description="... in this batch (1 = the first).")
    crash_on_signal: bool = Field(
        False,
        description="... instead, in the first batch that raised a signal (at the "
        "*-sent-unrecorded points: that sent something).",
    )


class ApiSettings(_Section):
    """The HTTP API of ``driftgate serve``: rollout gates, metrics, signal lifecycle.

    Read endpoints are open. Mutating ones (ack, resume, silences) need
    ``Authorization: Bearer <token>``; with no token set they are refused (403).
    """

    host: str = Field("127.0.0.1", description="Listen address (0.0.0.0: every interface).")
    port: int = Field(8181, ge=1, le=65535, description="Listen port.")
    token: SecretStr | None = Field(
        None, description="Bearer token of mutating endpoints; set DRIFTGATE_API__TOKEN."
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Everything driftgate can be told, validated."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    source: SourceSettings = Field(default_factory=SourceSettings)  # type: ignore[arg-type]
    segments: SegmentSettings = Field(default_factory=SegmentSettings)  # type: ignore[arg-type]
    detection: DetectionSettings = Field(default_factory=DetectionSettings)  # type: ignore[arg-type]
    decisions: DecisionSettings = Field(default_factory=DecisionSettings)  # type: ignore[arg-type]
    signals: SignalSettings = Field(default_factory=SignalSettings)  # type: ignore[arg-type]
    labels: LabelSettings = Field(default_factory=LabelSettings)  # type: ignore[arg-type]
    router: RouterSettings = Field(default_factory=RouterSettings)  # type: ignore[arg-type]
    history: HistorySettings = Field(default_factory=HistorySettings)  # type: ignore[arg-type]
    api: ApiSettings = Field(default_factory=ApiSettings)  # type: ignore[arg-type]
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file (passed as init kwargs): operators override a
        # mounted config per pod without editing it.
        return (env_settings, init_settings)

    def dump(self) -> dict[str, Any]:
        """Settings as plain data, secrets masked."""
        return self.model_dump(mode="json")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (pass an existing --config FILE)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path} must end in .yaml, .yml or .toml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        msg = str(exc).replace("\n", " ")
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:]}: {msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections at top level")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _describe(err: ValidationError, data: dict[str, Any]) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
            continue
        value: Any = data
        for p in e["loc"]:
            value = value.get(p) if isinstance(value, dict) else None
        shown = f" = {value!r}" if value is not None and not isinstance(value, dict) else ""
        parts.append(f"{loc}{shown}: {msg}")
    return "bad config: " + "; ".join(parts)


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    search_cwd: bool = True,
) -> Settings:
    """Load, merge and validate settings; raise :class:`ConfigError` with a one-line reason.

    ``overrides`` (from CLI flags) beat the file; the environment beats both.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_file(Path(path))
    elif search_cwd:
        for name in DEFAULT_CONFIG_FILES:
            if Path(name).is_file():
                data = _read_file(Path(name))
                break
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data)) from None
    except ValueError as exc:  # env values that are not valid JSON for complex fields
        env_keys = sorted(k for k in os.environ if k.startswith("DRIFTGATE_"))
        raise ConfigError(f"bad config from environment ({', '.join(env_keys)}): {exc}") from None
