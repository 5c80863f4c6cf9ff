"""What a log record shows: the fields ``ContextFilter`` fills in, and the text and JSON
formatters every tier uses (tier 1 shows either; the file and Elasticsearch tiers, JSON)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import msgspec

#: LogRecord attributes that are not ``extra`` fields.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

#: ``extra`` fields worth showing in text logs, in this order.
TEXT_EXTRAS = (
    "job_id", "job_name", "attempt", "worker_id", "routing_key", "priority", "duration_ms", "reason", "error",
)  # fmt: skip

#: Logger-name prefixes and the ``component`` they imply when a record does not say.
_COMPONENTS = (
    ("bananas.worker", "worker"), ("bananas.scheduler", "scheduler"), ("bananas.client", "client"),
    ("bananas.brokers", "broker"), ("bananas.observability.health", "api"), ("bananas.dashboard", "api"),
    ("bananas.job", "worker"),
)  # fmt: skip

_COLOURS = {
    "DEBUG": "\033[36m",
    "INFO": "\033[32m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "CRITICAL": "\033[1;31m",
}


class ContextFilter(logging.Filter):
    """Fills ``log_source`` (``bananas_internal`` unless a handler's ``ctx.logger`` set
    ``bananas_job``) and ``component`` (from the logger name) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_source"):
            record.log_source = "bananas_internal" if record.name.startswith("bananas") else "application"
        if not hasattr(record, "component"):
            for prefix, component in _COMPONENTS:
                if record.name.startswith(prefix):
                    record.component = component
                    break
        return True


_json = msgspec.json.Encoder(enc_hook=str)


def encode_json(document: dict[str, Any]) -> bytes:
    """A log document as JSON; values JSON has no type for are written as ``str(value)``."""
    try:
        return _json.encode(document)
    except (TypeError, msgspec.EncodeError, OverflowError):  # e.g. a key that is not a string
        return json.dumps(document, default=str).encode()


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with the job fields a record carries."""

    def __init__(self, color: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.color = color

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        pairs = [f"{key}={getattr(record, key)}" for key in TEXT_EXTRAS if getattr(record, key, None) is not None]
        text = f"{text} {' '.join(pairs)}" if pairs else text
        if self.color:
            return f"{_COLOURS.get(record.levelname, '')}{text}\033[0m"
        return text


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message and every ``extra`` field."""

    def __init__(self) -> None:
        super().__init__()
        self._second = (-1, "")  # the last whole second and its ISO text (shared by its records)

    def format(self, record: logging.LogRecord) -> str:
        return encode_json(self.document(record)).decode()

    def timestamp(self, created: float) -> str:
        """``created`` as ISO 8601 in UTC with milliseconds (``2026-12-01T23:34:17.123+00:00``)."""
        second = int(created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{int((created - second) * 1000):03d}+00:00"

    def document(self, record: logging.LogRecord) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(record_fields(record))
        if not data.get("traceback"):
            data.pop("traceback", None)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return data
