"""The ``driftgate`` command line (Typer + Rich), thin over the rest of the package.

Exit codes: 0 ok · 1 internal error · 2 bad config or usage · 3 source unavailable (missing
file, unreachable broker, unknown topic) · 4 history store error · 5 sink error ·
130 second interrupt.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from detectors import SignalKind, calibrate
from detectors.bernoulli import calibrate_bernoulli, grid_rate
from detectors.scale import calibrate_scale
from monitor import __version__
from monitor.config import Settings, load_settings
from monitor.demo import LocalWebhook, demo_router
from monitor.detection import fleet_budget
from monitor.errors import EXIT_CONFIG, EXIT_INTERNAL, ConfigError, DriftgateError
from monitor.events import DriftEvent, Signal
from monitor.intake import Intake
from monitor.logs import setup_logging
from monitor.observe import Observer
from monitor.operations import (
    EXIT_GATE_HALT,
    EXIT_GATE_WARN,
    acknowledge,
    create_silence,
    evaluate_gate,
    expire_silence,
    given_up,
    list_silences,
    parse_duration,
    parse_time,
)
from monitor.operations import resume as resume_signal
from monitor.pipeline import RunSummary
from monitor.profiles import Profile, ProfileBuilder, ProfileFilter
from monitor.router.pipeline import Router
from monitor.router.route import Route
from monitor.schema import BadRecord, json_schema_text
from monitor.service import build_monitor, install_stop_handlers
from monitor.sources import DemoScenario, DemoSource, FileSource, Source
from monitor.store import HistoryFilter, HistoryStore
from monitor.store.database import Database
from monitor.store.schema import current_revision, head_revision, is_known

__all__ = ["app", "main"]

app = typer.Typer(
    name="driftgate",
    help="Streaming drift monitor: watches inference logs per region and cohort and raises "
    "scaling-halt signals (WARN / HALT) when inputs or behaviour drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
log = logging.getLogger("monitor.cli")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (YAML or TOML). Default: ./driftgate.yaml "
        "or ./driftgate.toml when present, else built-in defaults.",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="History store: a SQLite file or a database URL such as "
        "postgresql://user@host:5432/db (overrides history.url / history.path).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output: one JSON object per line.")]
SinceOpt = Annotated[str | None, typer.Option(help="From this time (RFC 3339 or epoch ms).")]
UntilOpt = Annotated[str | None, typer.Option(help="Up to this time (RFC 3339 or epoch ms).")]
LogFormatOpt = Annotated[
    str | None, typer.Option("--log-format", help="Log format on stderr: text or json.")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"driftgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """driftgate: drift monitor and scaling-halt signals for staged AI rollouts."""


@contextmanager
def _errors() -> Iterator[None]:
    """Turn every failure into one line on stderr and a documented exit code."""
    try:
        yield
    except DriftgateError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
            "(rerun with --log-level DEBUG for details, and please report it)"
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def _settings(config: Path | None, overrides: dict[str, Any]) -> Settings:
    return load_settings(config, overrides)


def _history(db: str | None) -> dict[str, Any]:
    """The settings override of ``--db``: a database URL or a SQLite file, in place of both
    ``history.url`` and ``history.path`` of the config file."""
    if db is None:
        return {}
    return {"history": {"url": db, "path": None} if "://" in db else {"path": db, "url": None}}


def _parse_source(spec: str) -> dict[str, Any]:
    if spec.startswith("file:"):
        return {"kind": "file", "path": spec[5:] or "-"}
    if spec == "-":
        return {"kind": "file", "path": "-"}
    if spec in ("kafka", "demo"):
        return {"kind": spec}
    raise ConfigError(f"bad --source {spec!r}: use file:PATH, '-' (stdin), kafka or demo")


def _progress(
    enabled: bool | None, total: int | None, label: str
) -> tuple[Progress | None, Callable[[int], None] | None]:
    show = err.is_terminal if enabled is None else enabled
    if not show:
        return None, None
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(label, total=total)
    return bar, lambda done: bar.update(task, completed=done)


def _run_monitor(
    settings: Settings,
    *,
    as_json: bool,
    progress: bool | None,
    scenario: DemoScenario | None = None,
) -> RunSummary:
    setup_logging(settings.logging.level, settings.logging.format)
    stop = threading.Event()
    install_stop_handlers(stop)
    with ExitStack() as stack:
        monitor = build_monitor(settings, stack, as_json=as_json, scenario=scenario)
        label = "demo" if scenario else f"{settings.source.kind}"
        bar, on_progress = _progress(progress, monitor.source.total, label)
        if bar is not None:
            stack.enter_context(bar)
        return monitor.run(stop, on_progress)


def _print_summary(summary: RunSummary, history: str, as_json: bool) -> None:
    if as_json:
        body = summary.as_dict() | {"kind": "summary", "history": history}
        body["signals"] = len(summary.signals)
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
        return
    n_halt = sum(1 for s in summary.signals if s.level.value == "HALT")
    n_warn = len(summary.signals) - n_halt
    rate = summary.records / summary.elapsed_s if summary.elapsed_s else 0.0
    err.print(
        f"[bold]{summary.status}[/]: {summary.records:,} records ({rate:,.0f}/s) in "
        f"{summary.elapsed_s:.1f}s · {summary.segments} segments · "
        f"{summary.dead_letters:,} dead letters · {summary.drift_events} drift events · "
        f"[red]{n_halt} HALT[/] · [yellow]{n_warn} WARN[/] · history: {history}"
    )
    if summary.overflowed:
        err.print(f"[yellow]{summary.overflowed:,} records went to the overflow segment[/]")
    if summary.late:
        err.print(
            f"[yellow]{summary.late:,} late records: their roll-up window had closed "
            "(used by their leaf segment only; see segments.allowed_lateness_s)[/]"
        )
    if summary.undelivered:
        err.print(f"[yellow]{summary.undelivered} signals still pending delivery (retried)[/]")


@app.command()
def run(
    config: ConfigOpt = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="Shortcut for the source: file:PATH, '-' (stdin), kafka, or demo.",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
    log_format: LogFormatOpt = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = None,
) -> None:
    """Monitor the configured source (Kafka or a JSON Lines file) until it ends or is stopped.

    A file is read to its end (resuming after the lines an earlier run already checkpointed);
    Kafka is consumed until SIGTERM/SIGINT, which finishes and commits the batch in hand.
    """
    with _errors():
        overrides: dict[str, Any] = {}
        if source:
            overrides["source"] = _parse_source(source)
        overrides |= _history(db)
        if log_format or log_level:
            overrides["logging"] = {
                k: v for k, v in (("format", log_format), ("level", log_level)) if v
            }
        settings = _settings(config, overrides)
        summary = _run_monitor(settings, as_json=as_json, progress=progress)
        _print_summary(summary, settings.history.location, as_json)


@app.command()
def demo(
    records: Annotated[int, typer.Option(min=1000, help="Records to generate.")] = 80_000,
    seed: Annotated[int, typer.Option(help="Random seed of the generator.")] = 7,
    db: Annotated[
        str, typer.Option("--db", help="History file for the demo (recreated).")
    ] = "driftgate-demo.db",
    as_json: JsonOpt = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
) -> None:
    """Run the whole pipeline on a generated multi-region stream with two incidents.

    Three regions × three cohorts of a support assistant; from 60 % of the stream on,
    enterprise users in eu-west send much longer prompts and get less confident answers;
    from 80 %, ap-south gets 1.8× slower. HALTs go to a signed loopback webhook (grouped by
    region), every notification to driftgate-demo-notifications.jsonl; the fan-out table
    shows what was muted and why. No Kafka needed.
    """
    with _errors(), LocalWebhook() as hook:
        scenario = DemoScenario(records=records, seed=seed)
        notes = "driftgate-demo-notifications.jsonl"
        for path in (db, db + "-wal", db + "-shm", notes):
            Path(path).unlink(missing_ok=True)
        settings = load_settings(
            overrides={
                "source": {
                    "kind": "demo",
                    "batch_size": 2000,
                    "dead_letter_path": "driftgate-demo-deadletter.jsonl",
                },
                "history": {"path": db, "url": None},
                "signals": {"stdout": as_json},
                "router": demo_router(hook.url, notes),
                "logging": {"level": "ERROR"},
            },
            search_cwd=False,
        )
        if not as_json:
            err.print(
                f"[bold]driftgate demo[/]: {records:,} inference logs, 3 regions × 3 cohorts; "
                f"drift injected into {scenario.drift_region}/{scenario.drift_cohort} "
                f"from record {scenario.drift_index + 1:,}"
                + (
                    f"; {scenario.outage_region} {scenario.outage_factor:g}× slower from "
                    f"record {scenario.outage_index + 1:,}"
                    if scenario.outage_index is not None
                    else ""
                )
            )
        summary = _run_monitor(settings, as_json=as_json, progress=progress, scenario=scenario)
        fanout = _fanout(settings, hook)
        if as_json:
            sys.stdout.write(orjson.dumps({"kind": "fanout", **fanout}).decode() + "\n")
            _print_summary(summary, db, True)
            return
        _signals_table(summary.signals, title="Scaling-halt signals")
        _fanout_table(fanout, notes)
        _print_summary(summary, db, False)
        err.print(
            f"next: [bold]driftgate history --db {db}[/]  ·  [bold]driftgate status --db {db}[/]"
        )


def _fanout(settings: Settings, hook: LocalWebhook) -> dict[str, Any]:
    """Where the demo's notifications went, and which alerts the router muted and why."""
    store = HistoryStore.from_settings(settings.history)
    try:
        rows = store.notifications()
        plan = Router(settings.router).plan(store.signal_states(), [], 0)
    finally:
        store.close()
    receivers: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        p = r["payload"]
        receivers.setdefault(r["receiver"], []).append(
            {
                "id": r["notification_id"],
                "group": ",".join(f"{k}={v}" for k, v in p["group_labels"].items()),
                "state": r["state"],
                "alerts": [f"{a['level']} {a['labels']['segment']}" for a in p["alerts"]],
            }
        )
    return {
        "receivers": receivers,
        "muted": plan.muted,
        "webhook_received": [d["id"] for d in hook.received],
    }


def _fanout_table(fanout: dict[str, Any], notes: str) -> None:
    table = Table(title="Fan-out: notifications per receiver (grouped; inhibited alerts muted)")
    for col in ("receiver", "group", "alerts", "state"):
        table.add_column(col, overflow="fold")
    got = set(fanout["webhook_received"])
    for receiver, items in fanout["receivers"].items():
        for n in items:
            state = n["state"]
            if receiver == "oncall":
                state += " (signature ok)" if n["id"] in got else " (not received)"
            table.add_row(receiver, n["group"], "\n".join(n["alerts"]), state)
    for segment, why in fanout["muted"].items():
        table.add_row("—", "—", segment, f"muted: {why}")
    out.print(table)
    err.print(f"file receiver: {notes}  ·  on-call webhook: a local receiver started by the demo")


def _open_store(config: Path | None, db: str | None) -> tuple[HistoryStore, str]:
    history = _settings(config, _history(db)).history
    if history.url is None and history.path is not None and not Path(history.path).is_file():
        raise ConfigError(
            f"no drift history at {history.path} yet (run `driftgate run` or pass --db FILE)"
        )
    return HistoryStore.from_settings(history), history.location


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _signals_table(signals: list[Signal], title: str) -> None:
    if not signals:
        out.print("[green]no scaling-halt signals[/]")
        return
    table = Table(title=title, title_justify="left")
    for col in ("time (UTC)", "level", "scope", "reason", "at"):
        table.add_column(col, overflow="fold")
    for s in signals:
        color = "red" if s.level.value == "HALT" else "yellow"
        table.add_row(
            _ts(s.ts_ms), f"[{color}]{s.level.value}[/]", s.segment, s.reason, str(s.position)
        )
    out.print(table)


@app.command()
def history(
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    cohort: Annotated[str | None, typer.Option(help="Only this cohort.")] = None,
    signal: Annotated[
        str | None, typer.Option(help="Only this signal, e.g. feature:prompt_tokens.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only drift, WARN or HALT.")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift events and signals, oldest first: a table, or JSON Lines with --json."""
    with _errors():
        if kind is not None and kind not in ("drift", "WARN", "HALT"):
            raise ConfigError(f"bad --kind {kind!r}: use drift, WARN or HALT")
        f = HistoryFilter(
            region=region,
            cohort=cohort,
            signal=signal,
            kind=kind,
            since_ms=parse_time(since, "--since"),
            until_ms=parse_time(until, "--until"),
            limit=limit,
        )
        store, _ = _open_store(config, db)
        rows = store.history(f)
        if as_json:
            sys.stdout.write("".join(orjson.dumps(r.as_dict()).decode() + "\n" for r in rows))
            return
        table = Table(title=f"Drift history ({len(rows)} rows)", title_justify="left")
        for col in ("time (UTC)", "kind", "segment", "signal / reason", "effect", "at"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if isinstance(r, DriftEvent):
                table.add_row(
                    _ts(r.ts_ms), "drift", r.segment, r.signal, f"{r.effect:+.2f}σ", str(r.position)
                )
            else:
                color = "red" if r.level.value == "HALT" else "yellow"
                table.add_row(
                    _ts(r.ts_ms),
                    f"[{color}]{r.level.value}[/]",
                    r.segment,
                    r.reason,
                    "",
                    str(r.position),
                )
        out.print(table)


@app.command()
def status(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The signals in force per scope (a HALT stays until a person lifts it), and the
    notifications receivers gave up on (on standard error with --json)."""
    with _errors():
        store, path = _open_store(config, db)
        active = store.active_signals()
        totals = store.totals()
        lost = given_up(store)
        if as_json:
            sys.stdout.write("".join(orjson.dumps(s.as_dict()).decode() + "\n" for s in active))
            _given_up_line(lost)
            return
        _signals_table(active, title=f"Active signals ({path})")
        err.print(
            f"{totals['runs']} runs · {totals['records']:,} records · "
            f"{totals['dead_letters']:,} dead letters · {totals['late']:,} late · "
            f"{totals['drift_events']} drift events · {totals['signals']} signals"
        )
        if lost["recent"]:
            table = Table(title="Notifications given up (newest first)", title_justify="left")
            for col in ("time (UTC)", "receiver", "notification", "outcome", "reason"):
                table.add_column(col, overflow="fold")
            for r in lost["recent"]:
                outcome = "handed to fallback" if r["state"] == "fallback" else "[red]failed[/]"
                table.add_row(
                    _ts(r["given_up_ms"]),
                    r["receiver"],
                    r["notification_id"],
                    outcome,
                    r["reason"] or "",
                )
            out.print(table)
        _given_up_line(lost)


def _given_up_line(lost: dict[str, Any]) -> None:
    if lost["failed"] or lost["fallback"]:
        err.print(
            f"[red]{lost['failed']} notifications given up and delivered nowhere by their "
            f"receiver[/], {lost['fallback']} handed to a fallback receiver "
            "(reasons: the outbox, `GET /v1/status`; raise the receiver's max_age_s or "
            "configure a fallback)"
        )


reference_app = typer.Typer(
    help="Reference profiles: the named baselines segments are compared with.",
    no_args_is_help=True,
)
app.add_typer(reference_app, name="reference")


@reference_app.command("build")
def reference_build(
    name: Annotated[str, typer.Argument(help="Name of the profile, e.g. canary-eu.")],
    source: Annotated[str, typer.Option("--source", "-s", help="file:PATH, '-' (stdin) or demo.")],
    region: Annotated[list[str] | None, typer.Option(help="Only these regions (repeat).")] = None,
    cohort: Annotated[list[str] | None, typer.Option(help="Only these cohorts (repeat).")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    sample_size: Annotated[int, typer.Option(min=10, help="Values kept per signal.")] = 2000,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a reference profile by replaying logs (e.g. the validated canary) and store it."""
    with _errors():
        settings = _settings(config, _history(db))
        spec = _parse_source(source)
        pfilter = ProfileFilter(
            regions=region or None,
            cohorts=cohort or None,
            since_ms=parse_time(since, "--since"),
            until_ms=parse_time(until, "--until"),
        )
        det = settings.detection
        builder = ProfileBuilder(
            Observer(det.features, det.max_features), pfilter, sample_size=sample_size
        )
        src: Source
        if spec["kind"] == "file":
            src = FileSource(spec["path"])
        elif spec["kind"] == "demo":
            src = DemoSource(DemoScenario())
        else:
            raise ConfigError(
                "reference build reads file:PATH, '-' or demo (export Kafka to a file)"
            )
        bad = 0
        intake = Intake.from_settings(settings.source)  # the monitor's checks, future included
        try:
            while not src.exhausted:
                for raw in src.poll(5000):
                    try:
                        builder.add(intake.record(raw.value))
                    except BadRecord:
                        bad += 1
        finally:
            src.close()
        if builder.records == 0:
            raise ConfigError(
                f"no record of {source} matches the filter; nothing to build {name!r} from"
            )
        profile = builder.build(name)
        store = HistoryStore.from_settings(settings.history)
        try:
            store.save_profile(name, profile.records, profile.to_dict())
        finally:
            store.close()
        if as_json:
            sys.stdout.write(
                orjson.dumps(
                    {
                        "name": name,
                        "records": profile.records,
                        "signals": sorted(profile.signals),
                        "bad_records": bad,
                    }
                ).decode()
                + "\n"
            )
            return
        err.print(
            f"reference [bold]{name}[/]: {profile.records:,} records, "
            f"{len(profile.signals)} signals, {bad} bad records skipped → "
            f"{settings.history.location}"
        )


@reference_app.command("list")
def reference_list(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The stored reference profiles."""
    with _errors():
        store, _ = _open_store(config, db)
        rows = store.profiles()
        if as_json:
            sys.stdout.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
            return
        table = Table(title="Reference profiles", title_justify="left")
        for col in ("name", "created (UTC)", "records"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], _ts(r["created_at"]), f"{r['records']:,}")
        out.print(table)


@reference_app.command("show")
def reference_show(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One profile: per signal, how many values and their summary."""
    with _errors():
        store, path = _open_store(config, db)
        data = store.load_profile(name)
        if data is None:
            raise ConfigError(
                f"no reference profile {name!r} in {path} (see `driftgate reference list`)"
            )
        if as_json:
            sys.stdout.write(orjson.dumps(data).decode() + "\n")
            return
        profile = Profile.from_dict(data)
        table = Table(title=f"Reference {name} ({profile.records:,} records)", title_justify="left")
        for col in ("signal", "kind", "seen", "summary"):
            table.add_column(col, overflow="fold")
        for sig, sp in sorted(profile.signals.items()):
            if sp.counts:
                total = sum(sp.counts.values())
                top = sorted(sp.counts.items(), key=lambda kv: -kv[1])[:4]
                summary = ", ".join(f"{k} {v / total:.0%}" for k, v in top)
            elif sp.kind is SignalKind.RATE:
                summary = f"rate {sum(sp.sample) / max(len(sp.sample), 1):.2%}"
            else:
                xs = sorted(sp.sample)
                summary = (
                    (
                        f"median {xs[len(xs) // 2]:.4g}, p5 {xs[len(xs) // 20]:.4g}, "
                        f"p95 {xs[len(xs) * 19 // 20]:.4g}"
                    )
                    if xs
                    else "-"
                )
            table.add_row(sig, sp.kind.value, f"{sp.seen:,}", summary)
        out.print(table)


@app.command()
def budget(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The fleet false-alarm budget, its split per detector, and the calibration it implies."""
    with _errors():
        settings = _settings(config, {})
        det = settings.detection
        b = fleet_budget(settings, anchored=det.reference is not None)
        target = det.target_arl0 if det.target_arl0 is not None else b.target_arl0
        target = float(f"{min(target, 1e12):.3g}")
        warmup = 1000 if det.warmup is None else max(det.warmup, 10)
        num = calibrate(target, det.k)
        q = grid_rate(0.05, det.rate_ratio)
        rate = calibrate_bernoulli(target, q, det.rate_ratio)
        spread = calibrate_scale(target, det.spread_ratio) if det.spread_ratio else None
        body = {
            "mode": det.mode,
            "budget": b.describe(),
            "target_arl0": target,
            "calibration": {
                "numeric": {
                    "detector": "cusum",
                    "k": num.k,
                    "threshold": num.threshold,
                    "achieved_arl0": num.achieved_arl0,
                    "ci95": list(num.ci95),
                    "seconds": round(num.seconds, 3),
                },
                "rate": {
                    "detector": "bernoulli",
                    "ratio": rate.ratio,
                    "at_rate": rate.q,
                    "threshold": rate.threshold * rate.unit,
                    "achieved_arl0": rate.achieved_arl0,
                    "seconds": round(rate.seconds, 3),
                },
                "spread": None
                if spread is None
                else {
                    "detector": "scale",
                    "ratio": spread.ratio,
                    "k": [spread.k_up, spread.k_down],
                    "threshold": [spread.h_up, spread.h_down],
                    "achieved_arl0": spread.achieved_arl0,
                    "ci95": list(spread.ci95),
                    "seconds": round(spread.seconds, 3),
                },
            },
        }
        if as_json:
            sys.stdout.write(orjson.dumps(body).decode() + "\n")
            return
        d = b.describe()
        out.print(
            f"[bold]budget[/]: {d['false_halts_per_week']:g} false HALT/week over "
            f"{d['events_per_second']:g} records/s × {d['streams_per_event']:g} detector "
            f"streams per record ({d['split']})"
        )
        out.print(
            f"per-detector target ARL0: [bold]{target:.3g}[/] observations between "
            f"false alarms (mode: {det.mode})"
        )
        out.print(
            f"own-past detectors learn from {warmup:,} observations, then score each value "
            "against every value counted since (self-starting: the target holds whatever "
            "they learned):"
        )
        out.print(
            f"  numeric  CUSUM k={num.k:g}  h={num.threshold:.3f}  achieved "
            f"{num.achieved_arl0:.3g} (95% CI {num.ci95[0]:.3g} to {num.ci95[1]:.3g})  "
            f"calibrated in {num.seconds:.2f}s"
        )
        out.print(
            f"  rate     Bernoulli CUSUM for p -> {rate.ratio:g} p, at p = {rate.q:.3g}: "
            f"h={rate.threshold * rate.unit:.3f}  achieved {rate.achieved_arl0:.3g} (exact)  "
            f"calibrated in {rate.seconds:.2f}s (per learned rate, cached)"
        )
        if spread is not None:
            out.print(
                f"  spread   CUSUM on z² for σ -> {spread.ratio:g} σ and σ / {spread.ratio:g}: "
                f"h={spread.h_up:.3f} / {spread.h_down:.3f}  achieved "
                f"{spread.achieved_arl0:.3g} (95% CI {spread.ci95[0]:.3g} to "
                f"{spread.ci95[1]:.3g})  calibrated in {spread.seconds:.2f}s"
            )


routes_app = typer.Typer(help="The alert routing tree.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")


@routes_app.command("test")
def routes_test(
    labels: Annotated[
        list[str],
        typer.Argument(help="Alert labels as key=value, e.g. severity=critical region=eu-west."),
    ],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which receivers would a signal with these labels reach?"""
    with _errors():
        settings = _settings(config, {})
        parsed: dict[str, str] = {}
        for item in labels:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"bad label {item!r}: use key=value")
            parsed[key] = value
        hits = Route.from_settings(settings.router.route).match(parsed)
        receivers = [r.receiver for r in hits if r.receiver]
        if as_json:
            sys.stdout.write(
                orjson.dumps(
                    {"labels": parsed, "receivers": receivers, "routes": [r.path for r in hits]}
                ).decode()
                + "\n"
            )
            return
        if not receivers:
            out.print("no receiver (set router.route.receiver for a default)")
            raise typer.Exit(1)
        for r in hits:
            out.print(f"{r.receiver}  (via {r.path}, group_by {list(r.group_by)})")


@app.command()
def schema(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead.")
    ] = None,
) -> None:
    """Print the JSON Schema of inference-log records (schema v1)."""
    with _errors():
        text = json_schema_text()
        if out_file:
            out_file.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)


# -- API and operations: serve, ack, resume, silence, gate (monitor/operations.py) -----------

ByOpt = Annotated[str, typer.Option("--by", help="Who you are (recorded), e.g. alice@example.com.")]
CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="Why (recorded).")]


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc} (check api.host / --host)"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot listen on {host}:{port}: the port is taken "
                "(stop the other server or choose another with --port / api.port)"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror} (check --host / --port)"
        ) from None
    return sock


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (overrides api.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Listen port (overrides api.port).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Serve the HTTP API: rollout gates (Argo, Flagger), /metrics, signals, silences.

    Reads the history store a `driftgate run` writes. Mutating endpoints need api.token
    (DRIFTGATE_API__TOKEN); without it they answer 403. SIGTERM or Ctrl-C stops it
    cleanly (exit 0). See docs/api.md.
    """
    with _errors():
        overrides: dict[str, Any] = _history(db)
        api = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        if api:
            overrides["api"] = api
        settings = _settings(config, overrides)
        setup_logging(settings.logging.level, settings.logging.format)
        import uvicorn

        from monitor.api import create_app

        sock = _bind(settings.api.host, settings.api.port)
        try:
            application = create_app(settings)
            server = uvicorn.Server(
                uvicorn.Config(application, log_config=None, timeout_graceful_shutdown=5)
            )
            token = settings.api.token
            mutations = "on" if token is not None and token.get_secret_value() else "off"
            err.print(
                f"driftgate API on http://{settings.api.host}:{settings.api.port} "
                f"(history: {settings.history.location}; ack/resume/silences: {mutations})",
                soft_wrap=True,
            )
            # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to
            # the handler that was installed before it: make that one a no-op, so a stop
            # request ends with exit 0 instead of a KeyboardInterrupt or death by signal.
            before = {
                sig: signal.signal(sig, lambda _n, _f: None)
                for sig in (signal.SIGTERM, signal.SIGINT)
            }
            try:
                server.run(sockets=[sock])
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)
        finally:
            sock.close()
        if not server.started:
            raise DriftgateError("the API did not start (see the log above)")


def _print_signal(view: dict[str, Any], verb: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(view).decode() + "\n")
        return
    color = "red" if view["level"] == "HALT" else "yellow"
    who = view["acked_by"] if verb == "acknowledged" else view["ended_by"]
    out.print(
        f"{verb} [{color}]{view['level']}[/] {view['id']} ({escape(view['segment'])}) "
        f"by {escape(str(who))}: state {view['state']}"
    )


@app.command()
def ack(
    signal_id: Annotated[str, typer.Argument(help="Signal id (see `driftgate status --json`).")],
    by: ByOpt,
    comment: CommentOpt,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge a WARN or HALT: you own it; it stays in force (a HALT still halts)."""
    with _errors():
        store, _ = _open_store(config, db)
        _print_signal(acknowledge(store, signal_id, by, comment), "acknowledged", as_json)


@app.command()
def resume(
    signal_id: Annotated[str, typer.Argument(help="Id of an acknowledged WARN or HALT.")],
    by: ByOpt,
    comment: CommentOpt,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lift an acknowledged WARN or HALT: rollouts of its scope may go on."""
    with _errors():
        store, _ = _open_store(config, db)
        _print_signal(resume_signal(store, signal_id, by, comment), "resumed", as_json)


silence_app = typer.Typer(
    help="Silences: mute notifications of matching alerts for a while (gates are unaffected).",
    no_args_is_help=True,
)
app.add_typer(silence_app, name="silence")


def _silences_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("no silences")
        return
    table = Table(title="Silences", title_justify="left")
    for col in ("id", "matchers", "state", "ends (UTC)", "author", "comment"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["id"],
            escape(" ".join(r["matchers"])),
            r["state"],
            _ts(r["ends_ms"]),
            escape(r["author"]),
            escape(r["comment"]),
        )
    out.print(table)


@silence_app.command("add")
def silence_add(
    matchers: Annotated[
        list[str],
        typer.Argument(help="Alert label matchers: key=value, key!=value, key=~regex, key!~regex."),
    ],
    by: ByOpt,
    comment: CommentOpt,
    duration: Annotated[str, typer.Option(help="How long, e.g. 30m, 2h, 1d.")] = "1h",
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mute notifications of alerts matching every matcher, from now for --duration."""
    with _errors():
        store, _ = _open_store(config, db)
        view = create_silence(
            store, matchers, author=by, comment=comment, duration_s=parse_duration(duration)
        )
        if as_json:
            sys.stdout.write(orjson.dumps(view).decode() + "\n")
            return
        shown = escape(" ".join(view["matchers"]))
        out.print(f"silence {view['id']} ({shown}) until {view['ends_at']}")


@silence_app.command("list")
def silence_list(
    include_expired: Annotated[bool, typer.Option("--all", help="Also expired silences.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pending and active silences, newest first."""
    with _errors():
        store, _ = _open_store(config, db)
        rows = list_silences(store, include_expired=include_expired)
        if as_json:
            sys.stdout.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
            return
        _silences_table(rows)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="Silence id (see `driftgate silence list`).")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a silence now."""
    with _errors():
        store, _ = _open_store(config, db)
        view = expire_silence(store, silence_id)
        if as_json:
            sys.stdout.write(orjson.dumps(view).decode() + "\n")
            return
        out.print(f"silence {view['id']} expired at {view['ends_at']}")


@app.command()
def gate(
    region: Annotated[str | None, typer.Option(help="Scope: region.")] = None,
    cohort: Annotated[str | None, typer.Option(help="Scope: cohort.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Scope: model (if a segment dimension).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Other scope dimension as key=value (repeat).")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The gate of a scope, as rollout controllers see it: ok, warn or halt.

    Exit code: 0 ok, 10 warn, 11 halt (errors keep theirs: 2 usage, 4 history store).
    """
    with _errors():
        query: dict[str, str | None] = {"region": region, "cohort": cohort, "model": model}
        for item in label or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"bad --label {item!r}: use key=value")
            query[key] = value
        settings = _settings(config, _history(db))
        store, _ = _open_store(config, db)
        decision = evaluate_gate(store, query, settings.segments.dimensions)
        if as_json:
            sys.stdout.write(orjson.dumps(decision.as_dict()).decode() + "\n")
        else:
            color = {"ok": "green", "warn": "yellow", "halt": "red"}[decision.state.value]
            scope = ",".join(f"{k}={v}" for k, v in decision.scope.items()) or "*"
            out.print(f"[bold {color}]{decision.state.value}[/] {escape(scope)}")
            for s in decision.signals:
                owner = f" (acknowledged by {s['acked_by']})" if s["acked_by"] else ""
                line = f"  {s['level']} {s['segment']}: {s['reason']} [{s['id']}]{owner}"
                out.print(line, markup=False)
            if decision.ignored:
                err.print(f"ignored (not segment dimensions): {', '.join(decision.ignored)}")
        code = {"ok": 0, "warn": EXIT_GATE_WARN, "halt": EXIT_GATE_HALT}[decision.state.value]
        if code:
            raise typer.Exit(code)


db_app = typer.Typer(
    help="The history store's schema. Every command that opens the store migrates it to "
    "this driftgate's revision; a store written by a newer driftgate is refused.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def _revision_view(location: str, revision: str | None) -> dict[str, Any]:
    head = head_revision()
    if revision == head:
        state = "current"
    elif revision is None:
        state = "empty"
    elif is_known(revision):
        state = "behind"
    else:
        state = "newer"
    return {"history": location, "revision": revision, "head": head, "state": state}


def _print_revision(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(view).decode() + "\n")
        return
    note = {
        "current": "up to date",
        "empty": "no schema yet (created when a command opens it)",
        "behind": f"behind this driftgate's {view['head']} (upgraded when a command opens it)",
        "newer": f"written by a newer driftgate (this one knows up to {view['head']})",
    }[view["state"]]
    out.print(f"{view['history']}: revision {view['revision'] or '—'}, {note}", markup=False)


@db_app.command("current")
def db_current(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The schema revision of the history store (changes nothing)."""
    with _errors():
        history = _settings(config, _history(db)).history
        database = Database(history.database_url(), connect_timeout_s=history.connect_timeout_s)
        try:
            database.ping()
            revision = current_revision(database)
        finally:
            database.close()
        _print_revision(_revision_view(history.location, revision), as_json)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Migrate the history store to this driftgate's schema revision (creating it if new)."""
    with _errors():
        history = _settings(config, _history(db)).history
        store = HistoryStore.from_settings(history)
        store.close()
        _print_revision(_revision_view(history.location, store.revision), as_json)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except typer.Exit as exc:  # pragma: no cover - typer exits via SystemExit normally
        sys.exit(exc.exit_code)
    except ConfigError as exc:  # pragma: no cover
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(EXIT_CONFIG)
