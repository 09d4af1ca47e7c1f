"""Logging: readable lines by default, one JSON object per line with ``--log-format json``.

Logs go to stderr, so stdout stays clean for signals and ``--json`` output. Settings are
never logged whole; secrets are ``SecretStr`` and print masked.

>>> import io, logging, json
>>> buf = io.StringIO()
>>> setup_logging("INFO", "json", stream=buf)
>>> logging.getLogger("monitor.x").info("hello %s", "world")
>>> json.loads(buf.getvalue())["message"]
'hello world'
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import orjson

__all__ = ["JsonFormatter", "setup_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def setup_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python is chatty at INFO (connections, coordinator); keep its warnings.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
