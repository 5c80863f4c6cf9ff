"""Log tiers: context fields, the non-blocking queue handler, rotating gzip files, and the
Elasticsearch handler against a local HTTP server that implements the ``_bulk`` contract."""

from __future__ import annotations

import gzip
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bananas.observability.logs import (
    BatchingQueueListener,
    CircuitBreaker,
    CompressingRotatingFileHandler,
    ContextFilter,
    ElasticsearchHandler,
    JSONFormatter,
    NonBlockingQueueHandler,
    TextFormatter,
    cloud_id_url,
)
from bananas.testing import wait_until


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_record(msg: str = "hello %s", *args: object, level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    default = ("world",) if "%s" in msg else None
    record = logging.LogRecord("bananas.worker.worker", level, __file__, 1, msg, args or default, None)
    record.__dict__.update(extra)
    return record


def test_context_filter_and_json_fields() -> None:
    record = make_record(job_id="J1", job_name="send", duration_ms=1.5)
    ContextFilter().filter(record)
    doc = json.loads(JSONFormatter().format(record))
    assert doc["message"] == "hello world"
    assert doc["component"] == "worker" and doc["log_source"] == "bananas_internal"
    assert doc["job_id"] == "J1" and doc["duration_ms"] == 1.5
    job_record = make_record(log_source="bananas_job")
    job_record.name = "bananas.job"
    ContextFilter().filter(job_record)
    assert getattr(job_record, "log_source", None) == "bananas_job"


def test_text_formatter_shows_fields_and_colour() -> None:
    record = make_record(job_id="J1", attempt=2)
    assert "job_id=J1 attempt=2" in TextFormatter().format(record)
    assert TextFormatter(color=True).format(record).startswith("\033[32m")


def test_queue_handler_renders_arguments_and_exceptions_in_the_caller() -> None:
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = NonBlockingQueueHandler(q)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = make_record("value %d", 7)
        record.exc_info = sys.exc_info()
    handler.handle(record)
    out = q.get_nowait()
    assert out.msg == "value 7" and out.args is None
    assert out.exc_info is None and "ValueError: boom" in (out.exc_text or "")
    assert "ValueError: boom" in json.loads(JSONFormatter().format(out))["exc_info"]


def test_batching_listener_writes_every_record_in_order_by_stop() -> None:
    records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    listener = BatchingQueueListener(records, Collect())
    listener.start()
    for i in range(500):
        records.put(logging.makeLogRecord({"msg": f"m{i}", "levelno": logging.INFO}))
    listener.stop()  # returns once everything queued before it was handled
    assert seen == [f"m{i}" for i in range(500)]


#: The ``logging`` module's process-wide flags that the CLI, and only the CLI, turns off.
LOGGING_FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")

#: Imports the library, logs through its queue handler and prints the flags before and after.
LIBRARY_USE = """
import json, logging, sys
flags = lambda: [logging._srcfile is not None, logging.logThreads, logging.logProcesses, logging.logMultiprocessing]
before = flags()
import bananas, bananas.brokers.redis, bananas.brokers.sqlite, bananas.cli.logs, bananas.worker.worker
from bananas.observability.logs import ContextFilter, JSONFormatter, StderrHandler, start_queue_logging
console = StderrHandler()
console.setFormatter(JSONFormatter())
console.addFilter(ContextFilter())
front, listener = start_queue_logging([console], logging.INFO)
logging.getLogger("bananas.worker.worker").info("hello %s", "world", extra={"job_id": "J1"})
listener.stop()
print(json.dumps([before, flags()]))
"""


def test_importing_and_using_the_library_leaves_the_logging_flags_alone() -> None:
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", LIBRARY_USE], capture_output=True, text=True, timeout=60, check=True)
    before, after = json.loads(run.stdout)
    assert before == after == [True, True, True, True]
    assert json.loads(run.stderr)["job_id"] == "J1"


def test_the_cli_turns_the_logging_flags_off_when_it_configures_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    from bananas.cli.logs import configure_logging, stop_logging

    for name in LOGGING_FLAGS:  # put back after the test, whatever configure_logging sets
        monkeypatch.setattr(logging, name, getattr(logging, name))
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True
    logging._srcfile = os.path.normcase(logging.addLevelName.__code__.co_filename)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    for handler in saved[1]:  # configure_logging closes the handlers it replaces
        root.removeHandler(handler)
    try:
        configure_logging("INFO", "json")
        assert [getattr(logging, name) for name in LOGGING_FLAGS] == [None, False, False, False]
    finally:
        stop_logging()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)


def test_file_rotates_compresses_and_expires(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "bananas.log"
    handler = CompressingRotatingFileHandler(path, max_bytes=200, backups=3, max_age_days=1)
    handler.setFormatter(JSONFormatter())
    for i in range(40):
        handler.handle(make_record("line %d", i))
    backups = handler.backups_on_disk()
    assert [p.name for p in backups] == ["bananas.log.1.gz", "bananas.log.2.gz", "bananas.log.3.gz"]
    with gzip.open(backups[0], "rt") as f:
        assert json.loads(f.readline())["message"].startswith("line")
    old = time.time() - 3 * 86400
    os.utime(backups[2], (old, old))
    handler.remove_expired()
    assert len(handler.backups_on_disk()) == 2
    handler.close()


# --- a local stand-in for Elasticsearch's _bulk API -----------------------------------
class BulkServer:
    """Answers POST /_bulk like Elasticsearch: per-item statuses, ``errors`` flag, 429."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.indices: set[str] = set()
        self.requests = 0
        self.auth: list[str | None] = []
        self.reject_whole: int | None = None  # answer every request with this status
        self.item_status: list[int] = []  # statuses for the next items (then 201)
        self.hold: threading.Event | None = None  # a slow cluster: answer once this is set
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if server.hold is not None:
                    server.hold.wait(30)
                with server.lock:
                    server.requests += 1
                    server.auth.append(self.headers.get("Authorization"))
                    status = server.reject_whole
                    if status is None:
                        items, errors = server.index(body)
                        payload = json.dumps({"took": 1, "errors": errors, "items": items}).encode()
                        status = 200
                    else:
                        payload = b'{"error":"busy"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def index(self, body: str) -> tuple[list[dict[str, Any]], bool]:
        lines = body.strip().split("\n")
        items, errors = [], False
        for action, doc in zip(lines[::2], lines[1::2], strict=True):
            status = self.item_status.pop(0) if self.item_status else 201
            if status < 300:
                self.docs.append(json.loads(doc))
                self.indices.add(json.loads(action)["index"]["_index"])
            else:
                errors = True
            items.append({"index": {"status": status}})
        return items, errors

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def bulk() -> Iterator[BulkServer]:
    server = BulkServer()
    yield server
    server.stop()


def es_handler(url: str, **kw: Any) -> ElasticsearchHandler:
    handler = ElasticsearchHandler(
        [url], flush_bytes=kw.pop("flush_bytes", 1024), flush_interval_s=kw.pop("flush_interval_s", 0.05), **kw
    )
    handler.addFilter(ContextFilter())
    return handler


def test_bulk_indexing_into_daily_indices_by_bytes_and_interval(bulk: BulkServer) -> None:
    handler = es_handler(bulk.url, index_prefix="bananas-test", username="u", password="p", max_buffer_bytes=1 << 20)
    for i in range(50):  # > flush_bytes: sent by size
        handler.handle(make_record("msg %d", i, job_id=f"J{i}"))
    wait_until(lambda: len(bulk.docs) == 50, 10, "50 documents sent by size")
    handler.handle(make_record("alone"))  # small: sent by the interval
    wait_until(lambda: len(bulk.docs) == 51, 10, "the 51st document sent by the interval")
    assert bulk.indices == {f"bananas-test-{time.strftime('%Y.%m.%d', time.gmtime())}"}
    doc = bulk.docs[0]
    assert doc["job_id"] == "J0" and doc["log_source"] == "bananas_internal" and "@timestamp" in doc
    assert bulk.auth[0] is not None and bulk.auth[0].startswith("Basic ")
    handler.close()


def test_partial_failures_retry_429_and_drop_bad_items(bulk: BulkServer) -> None:
    bulk.item_status = [429, 400, 201]
    handler = es_handler(bulk.url, api_key="KEY", flush_bytes=1 << 20)
    for i in range(3):
        handler.handle(make_record("m %d", i))
    handler.flush()
    wait_until(lambda: len(bulk.docs) == 2, 10, "the 429 item to come back (the 400 one is dropped)")
    assert sorted(d["message"] for d in bulk.docs) == ["m 0", "m 2"]
    assert handler.rejected == 1 and bulk.auth[0] == "ApiKey KEY"
    bulk.reject_whole = 429  # the whole request throttled: kept and retried
    handler.handle(make_record("later"))
    handler.flush()
    wait_until(lambda: bulk.requests >= 3, 10, "three bulk requests")
    bulk.reject_whole = None
    wait_until(lambda: any(d["message"] == "later" for d in bulk.docs), 10, "the later document")
    handler.close()


def test_breaker_falls_back_while_unreachable_and_recovers(bulk: BulkServer) -> None:
    fallback = ListHandler()
    breaker = CircuitBreaker(threshold=2, cooldown_s=0.2)
    handler = es_handler(bulk.url, fallback=fallback, fallback_below=logging.WARNING, breaker=breaker, timeout_s=1)
    handler.setLevel(logging.DEBUG)
    url = bulk.url
    bulk.stop()  # the cluster goes away
    for i in range(3):
        handler.handle(make_record("lost? %d", i))
        handler.flush(1)
    wait_until(lambda: breaker.is_open, 10, "the breaker to open")
    assert any("unreachable" in r.getMessage() for r in fallback.records)
    handler.handle(make_record("while open", level=logging.INFO))
    handler.handle(make_record("shown anyway", level=logging.ERROR))
    messages = [r.getMessage() for r in fallback.records]
    assert "while open" in messages and "shown anyway" not in messages  # the console prints ERROR already
    revived = BulkServer.__new__(BulkServer)
    BulkServer.__init__(revived)
    try:
        handler.addresses = [revived.url]  # same cluster, new port (the old one is closed)
        assert url != revived.url
        wait_until(lambda: not breaker.is_open, 5, "the breaker to close")
        handler.handle(make_record("back"))
        handler.flush()
        wait_until(lambda: any(d["message"] == "back" for d in revived.docs), 10, "the document after recovery")
        assert any(d["message"].startswith("lost?") for d in revived.docs)  # the buffer was kept
        assert any("reachable again" in r.getMessage() for r in fallback.records)
    finally:
        handler.close()
        revived.stop()


def test_a_stalled_cluster_never_blocks_the_logging_thread(bulk: BulkServer) -> None:
    # One sender stuck in a request, its queue full: records keep being accepted at once
    # (buffered up to max_buffer_bytes, then handed to the fallback and counted), and what
    # was buffered is sent when the cluster answers again: every record lands once.
    bulk.hold = threading.Event()
    fallback = ListHandler()
    handler = es_handler(bulk.url, flush_bytes=512, flush_interval_s=0.01, max_buffer_bytes=32 * 1024, timeout_s=30,
                         fallback=fallback, fallback_below=logging.WARNING)  # fmt: skip
    emitted = threading.Thread(target=lambda: [handler.handle(make_record("m %d", i)) for i in range(3000)])
    emitted.start()
    emitted.join(20)
    try:
        assert not emitted.is_alive(), "handle() blocked on a stalled cluster"
        assert handler.dropped > 0 and bulk.requests <= 1
        assert len(fallback.records) == handler.dropped  # what did not fit went to the console/file tiers
    finally:
        bulk.hold.set()
    handler.flush()
    wait_until(lambda: len(bulk.docs) == 3000 - handler.dropped, 10, "every document not dropped")
    indexed = {d["message"] for d in bulk.docs}
    assert indexed.isdisjoint(r.getMessage() for r in fallback.records) and len(indexed) == len(bulk.docs)
    handler.close()
    handler.close()  # again, as logging.shutdown() does at exit: a no-op


def test_cloud_id_names_the_cluster() -> None:
    import base64

    cloud = "prod:" + base64.b64encode(b"us-east-1.aws.found.io$abc123$kib456").decode().rstrip("=")
    assert cloud_id_url(cloud) == "https://abc123.us-east-1.aws.found.io:443"
    handler = ElasticsearchHandler(cloud_id=cloud, api_key="K")
    assert handler.addresses == ["https://abc123.us-east-1.aws.found.io:443"]
    handler.close()
