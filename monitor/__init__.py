"""driftgate's service: sources, segments, decisions, history, sinks, CLI.

The detection maths lives in the sibling package ``detectors``; this package wires it to
Kafka, files and the history store.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftgate")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
