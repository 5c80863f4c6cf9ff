"""Log handlers and formatters for the three tiers; the CLI wires them (``cli/logs.py``).

- Tier 1, console: ``TextFormatter`` (optionally coloured) or ``JSONFormatter``.
- Tier 2, file: ``CompressingRotatingFileHandler`` rotates by size, gzips backups and
  removes them by count and by age.
- Tier 3, Elasticsearch/OpenSearch: ``ElasticsearchHandler`` batches documents into
  ``_bulk`` requests (by bytes or interval) on sender threads, behind a circuit breaker
  that hands records to a fallback handler while the cluster is unreachable.

Logging never blocks the caller: the CLI installs one ``NonBlockingQueueHandler`` on
the root logger and every tier runs on the ``QueueListener`` thread behind it.
The library itself only creates loggers (``logging.getLogger(__name__)``).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import logging.handlers
import os
import queue
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

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

    Records skip what no Bananas formatter shows (caller frame, thread and process names:
    the logging HOWTO's "Optimization" flags), a third of a log call's cost.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    q: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    front = NonBlockingQueueHandler(q)
    listener = BatchingQueueListener(q, *handlers)
    listener.start()
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(front)
    return front, listener


# --- tier 2: files --------------------------------------------------------------------
class CompressingRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates at ``max_bytes``; backups are ``name.1.gz`` (newest) .. ``name.N.gz``, and
    any older than ``max_age_days`` are removed at each rotation.

    Args:
        path: the live log file.
        max_bytes: size that triggers a rotation.
        backups: how many rotated files to keep.
        max_age_days: remove rotated files older than this (0: keep regardless of age).
        compress: gzip rotated files.
    """

    def __init__(
        self, path: str | Path, *, max_bytes: int, backups: int, max_age_days: float = 0.0, compress: bool = True
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self.max_age_days = max_age_days
        self.compress = compress
        if compress:
            self.namer = lambda name: name + ".gz"
            self.rotator = _gzip_rotate

    def doRollover(self) -> None:
        super().doRollover()
        self.remove_expired()

    def backups_on_disk(self) -> list[Path]:
        """Rotated files of this log, whatever their number."""
        base = Path(self.baseFilename)
        return sorted(
            p for p in base.parent.glob(base.name + ".*") if p.name[len(base.name) + 1 :].split(".")[0].isdigit()
        )

    def remove_expired(self) -> None:
        if self.max_age_days <= 0:
            return
        cutoff = time.time() - self.max_age_days * 86400
        for path in self.backups_on_disk():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def _gzip_rotate(source: str, dest: str) -> None:
    with open(source, "rb") as src, gzip.open(dest, "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out)
    os.remove(source)


# --- tier 3: Elasticsearch / OpenSearch ----------------------------------------------
def cloud_id_url(cloud_id: str) -> str:
    """The Elasticsearch URL an Elastic Cloud id (``name:base64(host$es$kibana)``) names."""
    _, _, encoded = cloud_id.partition(":")
    decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    host, es_uuid, *_ = decoded.split("$")
    host, _, port = host.partition(":")
    return f"https://{es_uuid}.{host}:{port or 443}"


class CircuitBreaker:
    """Closed -> open after ``threshold`` failures in a row; half-open after a cooldown that
    doubles while the cluster stays away (capped at ``max_cooldown_s``); one success closes it."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 2.0, max_cooldown_s: float = 60.0) -> None:
        self.threshold = threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.failures = 0
        self.cooldown_s = cooldown_s
        self.open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold and time.monotonic() < self.open_until

    def allow(self) -> bool:
        """Whether a request may go out now (closed, or half-open after the cooldown)."""
        return not self.is_open

    def success(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        with self._lock:
            was_open = self.failures >= self.threshold
            self.failures = 0
            self.cooldown_s = self.base_cooldown_s
            return was_open

    def failure(self) -> bool:
        """Record a failure; True when this opened the breaker."""
        with self._lock:
            self.failures += 1
            if self.failures < self.threshold:
                return False
            opened = self.failures == self.threshold
            if not opened:
                self.cooldown_s = min(self.max_cooldown_s, self.cooldown_s * 2)
            self.open_until = time.monotonic() + self.cooldown_s
            return opened


class ElasticsearchHandler(logging.Handler):
    """Indexes records into ``{index_prefix}-YYYY.MM.DD`` with the ``_bulk`` API.

    ``emit`` only serialises the record and appends it to a buffer; a batch goes out
    when the buffer reaches ``flush_bytes`` or every ``flush_interval_s``, on one of
    ``workers`` sender threads. Items the cluster rejects with 429 or 5xx are retried;
    other rejected items are dropped and counted. While the breaker is open, new records
    go to ``fallback`` (the console or file handler), so nothing vanishes silently, and the
    buffer is kept (up to ``max_buffer_bytes``) to be sent when the cluster is back.

    Args:
        addresses: cluster URLs, tried in turn.
        index_prefix: daily indices are ``{prefix}-YYYY.MM.DD`` (UTC).
        username, password: basic authentication.
        api_key: ``ApiKey`` authentication (Elastic Cloud); wins over basic.
        cloud_id: Elastic Cloud id; replaces ``addresses``.
        flush_bytes: send when this much is buffered.
        flush_interval_s: send at least this often.
        workers: sender threads.
        fallback: where records go while the cluster is unreachable.
        fallback_below: only records below this level go to ``fallback`` (the console
            and file tiers already show those at or above their own level).
        timeout_s: HTTP timeout per request.
    """

    def __init__(
        self,
        addresses: Sequence[str] = ("http://localhost:9200",),
        *,
        index_prefix: str = "bananas-logs",
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        cloud_id: str | None = None,
        flush_bytes: int = 5 * 1024 * 1024,
        flush_interval_s: float = 10.0,
        workers: int = 1,
        fallback: logging.Handler | None = None,
        fallback_below: int = logging.CRITICAL + 1,
        timeout_s: float = 5.0,
        max_buffer_bytes: int | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__()
        self.addresses = [cloud_id_url(cloud_id)] if cloud_id else [a.rstrip("/") for a in addresses]
        self.index_prefix = index_prefix
        self.headers = {"Content-Type": "application/x-ndjson"}
        if api_key:
            self.headers["Authorization"] = f"ApiKey {api_key}"
        elif username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.flush_bytes = flush_bytes
        self.flush_interval_s = flush_interval_s
        self.fallback = fallback
        self.fallback_below = fallback_below
        self.timeout_s = timeout_s
        self.max_buffer_bytes = max_buffer_bytes or 4 * flush_bytes
        self.breaker = breaker or CircuitBreaker()
        self.formatter_json = JSONFormatter()
        self.sent = 0  # documents indexed
        self.rejected = 0  # documents the cluster refused for good (mapping errors and such)
        self.dropped = 0  # documents not indexed because the buffer was full (sent to the fallback)
        self.requests = 0
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._lock = threading.Lock()
        self._batches: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=workers * 2)
        self._retry: list[bytes] = []
        self._stopped = threading.Event()
        self._idle = threading.Condition()
        self._inflight = 0
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"bananas-es-{i}", daemon=True) for i in range(workers)
        ]
        self._threads.append(threading.Thread(target=self._timer_loop, name="bananas-es-timer", daemon=True))
        for t in self._threads:
            t.start()

    # --- producing ---------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.breaker.is_open:
                self._to_fallback(record)
                return
            doc = self.formatter_json.document(record)
            doc["@timestamp"] = doc.pop("ts")
            index = f"{self.index_prefix}-{datetime.fromtimestamp(record.created, tz=UTC):%Y.%m.%d}"
            line = b'{"index":{"_index":"%s"}}\n%s\n' % (index.encode(), encode_json(doc))
            if not self._append([line]):
                self._to_fallback(record)  # the buffer is full (a slow or absent cluster)
        except Exception:  # noqa: BLE001 - logging.Handler's contract: report, never raise
            self.handleError(record)

    def _to_fallback(self, record: logging.LogRecord) -> None:
        # Records at or above ``fallback_below`` reach the console/file tiers anyway.
        if self.fallback is not None and record.levelno < self.fallback_below:
            self.fallback.handle(record)

    def _append(self, lines: list[bytes]) -> bool:
        """Buffer ``lines``; False when some did not fit (counted in ``dropped``).

        Never blocks the listener thread (and with it the console and file tiers): while
        every sender is busy (a slow cluster), lines stay in the buffer, up to
        ``max_buffer_bytes``; a record that does not fit goes to the fallback instead.
        """
        fitted = True
        with self._lock:
            for line in lines:
                if self._buf_bytes + len(line) > self.max_buffer_bytes:
                    self.dropped += 1
                    fitted = False
                    continue
                self._buf.append(line)
                self._buf_bytes += len(line)
            if self._buf_bytes >= self.flush_bytes:
                self._queue_buffer()
        return fitted

    def _queue_buffer(self) -> None:
        """Hand the buffer to the senders unless they are all busy or the breaker is open
        (the caller holds the lock; the buffer is kept then)."""
        if not self._buf or self._batches.full() or not self.breaker.allow():
            return
        batch = self._cut()
        try:
            self._batches.put_nowait(batch)
        except queue.Full:  # flush() put one in meanwhile: keep it for the next round
            self._buf, self._buf_bytes = batch, sum(map(len, batch))

    def _cut(self) -> list[bytes]:
        batch, self._buf, self._buf_bytes = self._buf, [], 0
        return batch

    def flush(self, timeout_s: float = 10.0) -> None:
        """Send what is buffered and wait (up to ``timeout_s``) until it was sent."""
        with self._lock:
            batch = self._cut() if self._buf and self.breaker.allow() else []
        if batch:
            self._batches.put(batch)
        with self._idle:
            self._idle.wait_for(lambda: self._batches.empty() and self._inflight == 0, timeout_s)

    def close(self) -> None:
        if not self._stopped.is_set():
            self.flush(self.timeout_s)
            self._stopped.set()
            for _ in self._threads:
                with contextlib.suppress(queue.Full):
                    self._batches.put_nowait(None)
        super().close()

    # --- sending -----------------------------------------------------------------
    def _timer_loop(self) -> None:
        while not self._stopped.wait(self.flush_interval_s):
            with self._lock:
                self._queue_buffer()

    def _send_loop(self) -> None:
        while True:
            batch = self._batches.get()
            if batch is None:
                return
            with self._idle:
                self._inflight += 1
            try:
                self._send(batch)
            finally:
                with self._idle:
                    self._inflight -= 1
                    self._idle.notify_all()

    def _send(self, batch: list[bytes]) -> None:
        body = b"".join(batch)
        for address in self.addresses:
            try:
                status, data = self._post(f"{address}/_bulk", body)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                error = str(exc)
                continue
            if status == 429 or status >= 500:
                error = f"HTTP {status}"
                continue
            if status >= 400:
                self.rejected += len(batch)
                self._report(f"bulk request refused: HTTP {status}")
                return
            self._accepted(batch, data)
            return
        self._failed(batch, error)

    def _post(self, url: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        request = urllib.request.Request(url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def _accepted(self, batch: list[bytes], data: dict[str, Any]) -> None:
        retry: list[bytes] = []
        if data.get("errors"):
            for line, item in zip(batch, data.get("items", []), strict=False):
                result: dict[str, Any] = next(iter(item.values()), {})
                status = int(result.get("status", 200))
                if status == 429 or status >= 500:
                    retry.append(line)
                elif status >= 300:
                    self.rejected += 1
        self.sent += len(batch) - len(retry)
        if self.breaker.success():
            self._report("log cluster reachable again; indexing resumed", logging.INFO)
        if retry:
            self._append(retry)

    def _failed(self, batch: list[bytes], error: str) -> None:
        opened = self.breaker.failure()
        self._append(batch)  # keep them (bounded) for when the cluster is back
        if opened:
            self._report(f"log cluster unreachable ({error}); logging to the fallback until it is back")

    def _report(self, message: str, level: int = logging.WARNING) -> None:
        """Tell the fallback (never the ES handler itself, which would loop)."""
        if self.fallback is not None:
            record = logging.LogRecord("bananas.observability.logs", level, __file__, 0, message, None, None)
            record.component = "logging"
            record.log_source = "bananas_internal"
            self.fallback.handle(record)
