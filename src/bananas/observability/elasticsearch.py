"""Tier 3, Elasticsearch/OpenSearch: ``ElasticsearchHandler`` batches documents into
``_bulk`` requests (by bytes or interval) on sender threads, behind a circuit breaker
that hands records to a fallback handler while the cluster is unreachable."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bananas.observability.breaker import CircuitBreaker
from bananas.observability.formatter import JSONFormatter, encode_json


def cloud_id_url(cloud_id: str) -> str:
    """The Elasticsearch URL an Elastic Cloud id (``name:base64(host$es$kibana)``) names."""
    _, _, encoded = cloud_id.partition(":")
    decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    host, es_uuid, *_ = decoded.split("$")
    host, _, port = host.partition(":")
    return f"https://{es_uuid}.{host}:{port or 443}"


def bulk_headers(username: str | None, password: str | None, api_key: str | None) -> dict[str, str]:
    """The headers of a ``_bulk`` request: NDJSON, and ``ApiKey`` (which wins) or basic
    authentication when given."""
    headers = {"Content-Type": "application/x-ndjson"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return headers


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
        self.headers = bulk_headers(username, password, api_key)
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
        self._threads = self._start_threads(workers)

    def _start_threads(self, workers: int) -> list[threading.Thread]:
        """Start ``workers`` sender threads and the flush timer (once every field is set)."""
        threads = [
            threading.Thread(target=self._send_loop, name=f"bananas-es-{i}", daemon=True) for i in range(workers)
        ]
        threads.append(threading.Thread(target=self._timer_loop, name="bananas-es-timer", daemon=True))
        for t in threads:
            t.start()
        return threads

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
