"""Logging overhead (pytest-benchmark): ``.venv/bin/pytest benchmarks/test_logging_overhead.py``.

Targets from the observability issue: a disabled log call < 1 µs, an enabled console
call < 20 µs on the caller's thread (the queue handler; formatting and writing happen on
the listener thread), and a worker's drain rate with INFO logging < 10 % below WARNING.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bananas.cli.logs import skip_unshown_record_fields
from bananas.observability.logs import ContextFilter, JSONFormatter, start_queue_logging

ROOT = Path(__file__).resolve().parents[1]
#: The ``logging`` module's flags the CLI turns off (``skip_unshown_record_fields``).
_FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    flags = {name: getattr(logging, name) for name in _FLAGS}
    for h in saved[1]:
        root.removeHandler(h)
    sink = logging.StreamHandler(io.StringIO())
    sink.setFormatter(JSONFormatter())
    sink.addFilter(ContextFilter())
    skip_unshown_record_fields()  # as the CLI does in a worker process
    front, listener = start_queue_logging([sink], logging.INFO)
    yield logging.getLogger("bananas.worker.executor")
    listener.stop()
    root.removeHandler(front)
    root.setLevel(saved[0])
    for h in saved[1]:
        root.addHandler(h)
    for name, value in flags.items():
        setattr(logging, name, value)


def test_disabled_call_under_1_us(benchmark: Any, logger: logging.Logger) -> None:
    extra = {"job_id": "01J", "job_name": "noop"}
    benchmark(logger.debug, "job %s done in %.1f ms", "01J", 1.0, extra=extra)
    assert benchmark.stats.stats.median < 1e-6


def test_enabled_console_call_under_20_us(benchmark: Any, logger: logging.Logger) -> None:
    extra = {"job_id": "01J", "job_name": "noop", "worker_id": "w", "routing_key": "default"}
    benchmark(logger.info, "job %s done in %.1f ms", "01J", 1.0, extra=extra)
    assert benchmark.stats.stats.median < 20e-6


def drain_rate(level: str, jobs: int) -> float:
    from bananas import Client, JobSpec
    from bananas.testing import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        client = Client(server.url)
        try:
            ids = client.submit_many([JobSpec("noop", {}) for _ in range(jobs)])
            env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": level, "LOG_FORMAT": "json"}
            cmd = [sys.executable, "-m", "bananas", "worker", "--app", "benchmarks.tasks:app", "--url", server.url,
                   "--concurrency", "100"]  # fmt: skip
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                first = client.wait(ids[0], 60)
                last = client.wait(ids[-1], 300)
            finally:
                proc.terminate()
                proc.wait(30)
            assert first.started_at is not None and last.finished_at is not None
            return jobs / (last.finished_at - first.started_at)
        finally:
            client.close()
            server.kill()


@pytest.mark.slow
def test_drain_with_info_logging_within_10_percent() -> None:
    quiet, info = [], []
    for _ in range(3):  # interleaved, median of three: the machine's noise is larger than the effect
        quiet.append(drain_rate("WARNING", 10_000))
        info.append(drain_rate("INFO", 10_000))
    drop = 1 - statistics.median(info) / statistics.median(quiet)
    print(f"drain WARNING {statistics.median(quiet):.0f}/s, INFO {statistics.median(info):.0f}/s, drop {drop:.1%}")
    assert drop < 0.10
