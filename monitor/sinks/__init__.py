"""Where driftgate's output goes: signal sinks and dead-letter sinks, one per file."""

from monitor.sinks.base import DeadLetter, DeadLetterSink, MemoryDeadLetters, MemorySink, SignalSink
from monitor.sinks.deadletter_file import FileDeadLetters
from monitor.sinks.deadletter_kafka import KafkaDeadLetters
from monitor.sinks.jsonl import JsonlSink
from monitor.sinks.kafka_control import KafkaControlSink
from monitor.sinks.stdout import StdoutSink

__all__ = [
    "DeadLetter",
    "DeadLetterSink",
    "FileDeadLetters",
    "JsonlSink",
    "KafkaControlSink",
    "KafkaDeadLetters",
    "MemoryDeadLetters",
    "MemorySink",
    "SignalSink",
    "StdoutSink",
]
