"""Logging for the command line: a ``dictConfig`` built from LOG_LEVEL and LOG_FORMAT.

The library only creates loggers; handlers are configured here, at the edge, once per
process (arq's ``default_log_config``).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bananas.errors import ConfigurationError

#: LogRecord attributes that are not ``extra`` fields.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

#: ``extra`` fields worth showing in text logs, in this order.
TEXT_EXTRAS = ("job_id", "job_name", "attempt", "worker_id", "routing_key", "queue")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with the job fields a record carries."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        pairs = [f"{key}={getattr(record, key)}" for key in TEXT_EXTRAS if getattr(record, key, None) is not None]
        return f"{text} {' '.join(pairs)}" if pairs else text


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners swap it),
    like the stdlib's last-resort handler."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """The ``dictConfig`` for ``level`` (a level name) and ``fmt`` (``text`` or ``json``).

    Raises:
        ConfigurationError: unknown level or format.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in ("text", "json"):
        raise ConfigurationError(f"LOG_FORMAT must be text or json, got {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": JSONFormatter}},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": fmt}},
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure_logging(level: str, fmt: str) -> None:
    """Install the stderr handler described by ``log_config``.

    Raises:
        ConfigurationError: unknown level or format.
    """
    logging.config.dictConfig(log_config(level, fmt))
