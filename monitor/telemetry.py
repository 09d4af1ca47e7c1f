"""OpenTelemetry instruments for the pipeline (counters per batch, never per record).

By default the SDK meter provider has no exporter; pass one with a reader (e.g. an
``InMemoryMetricReader`` in tests, an OTLP or Prometheus reader in production).

>>> from opentelemetry.sdk.metrics import MeterProvider
>>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
>>> reader = InMemoryMetricReader()
>>> m = Metrics(MeterProvider(metric_readers=[reader]))
>>> m.records.add(5)
>>> [p.value for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics
...  for metric in s.metrics if metric.name == "driftgate.records" for p in metric.data.data_points]
[5]
"""

from __future__ import annotations

from opentelemetry.metrics import MeterProvider as MeterProviderAPI
from opentelemetry.sdk.metrics import MeterProvider

__all__ = ["Metrics"]


class Metrics:
    """The counters driftgate keeps."""

    def __init__(self, provider: MeterProviderAPI | None = None) -> None:
        meter = (provider or MeterProvider()).get_meter("driftgate")
        self.records = meter.create_counter(
            "driftgate.records", unit="{record}", description="Valid records processed"
        )
        self.dead_letters = meter.create_counter(
            "driftgate.dead_letters", unit="{record}", description="Records sent to dead letter"
        )
        self.drift_events = meter.create_counter(
            "driftgate.drift_events", unit="{event}", description="Detector firings"
        )
        self.signals = meter.create_counter(
            "driftgate.signals", unit="{signal}", description="WARN/HALT signals raised"
        )
        self.overflow = meter.create_counter(
            "driftgate.segment_overflow",
            unit="{record}",
            description="Records routed to the overflow segment (cardinality cap)",
        )
        self.late = meter.create_counter(
            "driftgate.records.late",
            unit="{record}",
            description="Records whose roll-up window had closed (kept out of the roll-ups)",
        )
        self.notifications = meter.create_counter(
            "driftgate.notifications.delivered",
            unit="{notification}",
            description="Notifications a receiver accepted",
        )
        self.notifications_given_up = meter.create_counter(
            "driftgate.notifications.given_up",
            unit="{notification}",
            description="Notifications a receiver gave up on, by receiver and outcome "
            "(fallback: handed to the fallback receiver; failed: delivered nowhere)",
        )
        self.checkpoints = meter.create_histogram(
            "driftgate.checkpoint.duration", unit="s", description="Checkpoint commit time"
        )
