"""Logging, configured once for every command (``serve``, ``worker`` and the rest).

Every line carries its time (UTC, milliseconds), level, logger and message; with
``LEDGER_LOG_FORMAT=json`` each line is one JSON object with the same fields (plus the
traceback, when there is one), for log collectors that parse lines. uvicorn is started without
a logging configuration of its own, so its server and access lines take the same path.

Nothing here adds secrets: the modules that log are responsible for never passing one.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]

_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(_UtcFormatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the fields a
    module passed with ``extra=`` (a delivery's platform, subject and attempt, say) and, for an
    exception, ``exception`` (the formatted traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """Send every logger's records to standard error in one format, replacing any handler a
    library installed before us."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _UtcFormatter(_TEXT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # yoyo logs every step of every migration at INFO (ours says how many were applied), and
    # httpx every request the dispatcher sends (hundreds a second; the dispatcher logs what
    # failed, with its platform, subject and attempt).
    for chatty in ("yoyo", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
