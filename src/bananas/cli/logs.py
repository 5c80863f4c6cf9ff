"""Logging for the command line: the three tiers from LOG_*, LOG_FILE_* and LOG_ES_*.

The library only creates loggers; handlers are configured here, at the edge, once per
process (arq's ``default_log_config``). Every tier runs behind one queue handler on a
listener thread, so a log call never blocks the event loop on I/O.
"""

from __future__ import annotations

import atexit
import logging
import logging.config
import logging.handlers
import sys
from typing import Any

from bananas.errors import ConfigurationError
from bananas.observability.logs import (
    TEXT_EXTRAS,
    CompressingRotatingFileHandler,
    ContextFilter,
    ElasticsearchHandler,
    JSONFormatter,
    StderrHandler,
    TextFormatter,
    start_queue_logging,
)
from bananas.settings import LOG_LEVELS, LogSettings, parse_log_level

LEVELS = LOG_LEVELS

__all__ = [
    "LEVELS",
    "TEXT_EXTRAS",
    "JSONFormatter",
    "StderrHandler",
    "TextFormatter",
    "configure_logging",
    "log_config",
    "skip_unshown_record_fields",
]

#: The listener of the process's queue handler (stopped, and so flushed, at exit).
_state: dict[str, logging.handlers.QueueListener] = {}


def _check(level: str, fmt: str) -> str:
    level = parse_log_level(level)
    if fmt not in ("text", "json"):
        raise ConfigurationError(f"LOG_FORMAT must be text or json, got {fmt!r}")
    return level


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """The ``dictConfig`` of a plain, synchronous console (tier 1 only).

    Raises:
        ConfigurationError: unknown level or format.
    """
    level = _check(level, fmt)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": JSONFormatter}},
        "filters": {"context": {"()": ContextFilter}},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": fmt, "filters": ["context"]}},
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure_logging(level: str, fmt: str, logs: LogSettings | None = None) -> None:
    """Install the console tier and, when enabled, the file and Elasticsearch tiers.

    Raises:
        ConfigurationError: unknown level or format.
    """
    level = _check(level, fmt)
    logs = logs or LogSettings()
    stop_logging()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    context = ContextFilter()
    color = logs.color if logs.color is not None else (fmt == "text" and sys.stderr.isatty())
    console = StderrHandler()
    console.setFormatter(TextFormatter(color=color) if fmt == "text" else JSONFormatter())
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    if logs.file_enabled:
        file = CompressingRotatingFileHandler(
            logs.file_path, max_bytes=int(logs.file_max_size_mb * 1024 * 1024), backups=logs.file_max_backups,
            max_age_days=logs.file_max_age_days, compress=logs.file_compress,
        )  # fmt: skip
        file.setFormatter(JSONFormatter())
        file.setLevel(logs.file_level)
        handlers.append(file)
    if logs.es_enabled:
        shown = min(h.level for h in handlers)
        fallback = handlers[-1]  # the file when there is one, else the console (handle() ignores its level)
        es = ElasticsearchHandler(
            logs.es_addresses, index_prefix=logs.es_index_prefix, username=logs.es_username,
            password=logs.es_password, api_key=logs.es_api_key, cloud_id=logs.es_cloud_id,
            flush_bytes=logs.es_flush_bytes, flush_interval_s=logs.es_flush_interval_s,
            workers=logs.es_num_workers, fallback=fallback, fallback_below=shown,
        )  # fmt: skip
        es.setLevel(logs.es_level)
        handlers.append(es)
    for handler in handlers:
        handler.addFilter(context)
    lowest = min(logging.getLevelName(lv) for lv in _levels(level, logs))
    skip_unshown_record_fields()
    _, listener = start_queue_logging(handlers, lowest)
    _state["listener"] = listener
    atexit.register(stop_logging)


def skip_unshown_record_fields() -> None:
    """Records skip what no Bananas formatter shows (caller frame, thread and process names:
    the logging HOWTO's "Optimization" flags), a third of a log call's cost.

    These are flags of the ``logging`` module, for the whole process, so only the CLI sets
    them, when it configures the logging of the process it starts (every command, each
    supervised worker process too: ``bananas worker`` runs again in them). An application
    that embeds the library keeps its own.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _levels(level: str, logs: LogSettings) -> list[str]:
    levels = [level]
    if logs.file_enabled:
        levels.append(logs.file_level)
    if logs.es_enabled:
        levels.append(logs.es_level)
    return levels


def stop_logging() -> None:
    """Stop the listener thread after it wrote out every queued record."""
    listener = _state.pop("listener", None)
    if listener is not None:
        listener.stop()
        for handler in listener.handlers:
            handler.close()
