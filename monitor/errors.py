"""driftgate's exceptions, one root, each mapped to a process exit code.

::

    DriftgateError                  exit 1  (anything unexpected is also exit 1)
    ├── ConfigError                 exit 2  bad config file, key or value
    ├── SourceError                 exit 3  input missing or broker unreachable
    ├── StoreError                  exit 4  history store cannot be opened or written
    │   └── Fenced                  exit 4  a checkpoint of partitions another member owns
    └── SinkError                   exit 5  a signal sink cannot be reached

A second SIGINT/SIGTERM during shutdown exits at once with 130.
Every error message says what went wrong and what to do about it, on one line.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CONFIG",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SINK",
    "EXIT_SOURCE",
    "EXIT_STORE",
    "ConfigError",
    "DriftgateError",
    "Fenced",
    "SinkError",
    "SourceError",
    "StoreError",
    "StoreUnavailable",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_SOURCE = 3
EXIT_STORE = 4
EXIT_SINK = 5
EXIT_INTERRUPTED = 130


class DriftgateError(Exception):
    """Root of every error driftgate raises on purpose."""

    exit_code = EXIT_INTERNAL


class ConfigError(DriftgateError):
    """The configuration file, a key or a value is invalid."""

    exit_code = EXIT_CONFIG


class SourceError(DriftgateError):
    """The input cannot be read: missing file, unreachable broker, unknown topic."""

    exit_code = EXIT_SOURCE


class StoreError(DriftgateError):
    """The history store cannot be opened or written."""

    exit_code = EXIT_STORE


class StoreUnavailable(StoreError):  # noqa: N818 - a state of the store, not a mistake
    """The history store went away mid-run (connection refused or dropped, e.g. a
    PostgreSQL restart): the transaction did not happen, or its outcome is unknown; the
    store is the truth once it is back."""


class SinkError(DriftgateError):
    """A signal or dead-letter sink cannot be reached or written."""

    exit_code = EXIT_SINK


class Fenced(StoreError):  # noqa: N818 - the name the fleet engine catches: "fenced"
    """A checkpoint was refused, and nothing of its batch written: a partition it covers is
    owned by another fleet member, or by a newer consumer-group generation (this writer is
    a zombie of a rebalance). Carries the ``partition`` (source, partition), its ``owner``
    (member, generation; None when nobody owns it) and the ``writer`` (member, generation).
    """

    def __init__(
        self,
        partition: tuple[str, int],
        owner: tuple[str, int] | None,
        writer: tuple[str, int],
    ) -> None:
        self.partition = partition
        self.owner = owner
        self.writer = writer
        held = (
            f"owned by {owner[0]!r} in generation {owner[1]}"
            if owner is not None
            else "owned by no member"
        )
        super().__init__(
            f"fenced: partition {partition[0]}[{partition[1]}] is {held}, not by the writer "
            f"{writer[0]!r} in generation {writer[1]}; the batch was rolled back (stop "
            "processing that partition: the group was rebalanced)"
        )
