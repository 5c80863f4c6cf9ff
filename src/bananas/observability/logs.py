"""Log handlers and formatters for the three tiers; the CLI wires them (``cli/logs.py``).

- Tier 1, console: ``StderrHandler`` with ``TextFormatter`` (optionally coloured) or
  ``JSONFormatter`` (both in ``formatter``).
- Tier 2, file: ``CompressingRotatingFileHandler`` (``rotation``) rotates by size, gzips
  backups and removes them by count and by age.
- Tier 3, Elasticsearch/OpenSearch: ``ElasticsearchHandler`` (``elasticsearch``) batches
  documents into ``_bulk`` requests (by bytes or interval) on sender threads, behind a
  circuit breaker (``breaker``) that hands records to a fallback handler while the
  cluster is unreachable.

Every name above can be imported from here.

Logging never blocks the caller: the CLI installs one ``NonBlockingQueueHandler`` on
the root logger and every tier runs on the ``QueueListener`` thread behind it.
The library itself only creates loggers (``logging.getLogger(__name__)``).
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from bananas.observability.breaker import CircuitBreaker
from bananas.observability.elasticsearch import ElasticsearchHandler, cloud_id_url
from bananas.observability.formatter import (
    TEXT_EXTRAS,
    ContextFilter,
    JSONFormatter,
    TextFormatter,
    encode_json,
    record_fields,
)
from bananas.observability.rotation import CompressingRotatingFileHandler

__all__ = [
    "TEXT_EXTRAS",
    "BatchingQueueListener",
    "CircuitBreaker",
    "CompressingRotatingFileHandler",
    "ContextFilter",
    "ElasticsearchHandler",
    "JSONFormatter",
    "NonBlockingQueueHandler",
    "StderrHandler",
    "TextFormatter",
    "cloud_id_url",
    "encode_json",
    "record_fields",
    "start_queue_logging",
]


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


class NonBlockingQueueHandler(logging.handlers.QueueHandler):
    """Puts records on an unbounded queue; the ``QueueListener`` thread formats and writes.

    ``prepare`` does the least the caller must do (merge the arguments, render an
    exception) so that a log call costs a few microseconds on the event loop.
    """

    _exc_formatter = logging.Formatter()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if record.exc_info:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put_nowait(record)


class BatchingQueueListener(logging.handlers.QueueListener):
    """A ``QueueListener`` that wakes at most every ``BATCH_S`` and writes out all that
    queued meanwhile, instead of waking (and taking the GIL from the logging threads) for
    every record; between records it yields the GIL, so that a long batch never holds up
    the event loop for a whole switch interval. ``stop()`` still writes out every record
    queued before it."""

    #: Longest a record waits on the queue before it is written.
    BATCH_S = 0.005

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None], *handlers: logging.Handler) -> None:
        super().__init__(records, *handlers, respect_handler_level=True)
        self._records = records

    def _monitor(self) -> None:
        q = self._records
        while True:
            batch: list[logging.LogRecord | None] = [q.get()]
            time.sleep(self.BATCH_S)
            while True:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            for record in batch:
                if record is None:  # QueueListener's sentinel, put there by stop()
                    return
                self.handle(record)
                time.sleep(0)  # hand the GIL back between records, not every 5 ms


def start_queue_logging(
    handlers: Sequence[logging.Handler], level: int
) -> tuple[NonBlockingQueueHandler, logging.handlers.QueueListener]:
    """Install a queue handler on the root logger, with ``handlers`` behind a listener thread.

    The ``logging`` module's process-wide flags are left alone: the CLI turns off what no
    Bananas formatter shows when it starts a process (``cli/logs.py``).
    """
    q: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    front = NonBlockingQueueHandler(q)
    listener = BatchingQueueListener(q, *handlers)
    listener.start()
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(front)
    return front, listener
