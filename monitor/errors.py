"""driftgate's exceptions, one root, each mapped to a process exit code.

::

    DriftgateError                  exit 1  (anything unexpected is also exit 1)
    ├── ConfigError                 exit 2  bad config file, key or value
    ├── SourceError                 exit 3  input missing or broker unreachable
    ├── StoreError                  exit 4  history store cannot be opened or written
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
    "SinkError",
    "SourceError",
    "StoreError",
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


class SinkError(DriftgateError):
    """A signal or dead-letter sink cannot be reached or written."""

    exit_code = EXIT_SINK
