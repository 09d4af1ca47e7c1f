"""Where inference logs come from: Kafka, a JSON Lines file (or stdin), the demo generator."""

from monitor.sources.base import ListSource, RawRecord, Source
from monitor.sources.demo import DemoScenario, DemoSource
from monitor.sources.file import FileSource
from monitor.sources.kafka import KafkaSource

__all__ = [
    "DemoScenario",
    "DemoSource",
    "FileSource",
    "KafkaSource",
    "ListSource",
    "RawRecord",
    "Source",
]
