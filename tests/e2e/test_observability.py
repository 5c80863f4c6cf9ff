"""Observability across real worker processes: health under broker loss, Prometheus in
multi-process mode, and an OpenTelemetry trace continued from the submitting process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bananas import Client
from bananas.observability.tracing import TracingMiddleware
from bananas.testing import RedisServer, free_port, wait_until
from tests.e2e.conftest import ROOT, WorkerProcess

Spawn = Callable[..., WorkerProcess]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def bananas_health(port: int) -> int:
    cmd = [sys.executable, "-m", "bananas", "health", "--port", str(port), "--timeout", "3"]
    return subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False, timeout=30).returncode


def test_health_shows_broker_loss_and_recovery_within_5_s(spawn_worker: Spawn, fresh_redis: RedisServer) -> None:
    port = free_port()
    spawn_worker(fresh_redis.url, "--metrics-port", str(port))
    wait_until(lambda: get(f"http://127.0.0.1:{port}/ready")[0] == 200, 15, "worker ready")
    assert get(f"http://127.0.0.1:{port}/health")[0] == 200
    assert bananas_health(port) == 0
    fresh_redis.kill()
    wait_until(lambda: get(f"http://127.0.0.1:{port}/ready")[0] == 503, 5, "/ready reports the broker loss")
    assert json.loads(get(f"http://127.0.0.1:{port}/ready")[1])["broker"] == "unreachable"
    assert bananas_health(port) == 1
    fresh_redis.start()
    wait_until(lambda: get(f"http://127.0.0.1:{port}/ready")[0] == 200, 5, "/ready reports the recovery")
    assert get(f"http://127.0.0.1:{port}/health")[0] == 200


def test_prometheus_sums_supervised_processes(spawn_worker: Spawn, redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    port = free_port()
    spawn_worker(redis_server.url, "--processes", "2", "--metrics-port", str(port), "--concurrency", "2")

    def metrics() -> dict[str, float]:
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        if status != 200:
            return {}
        return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln and ln[0] != "#"}

    wait_until(lambda: metrics().get("bananas_workers") == 2.0, 20, "both children counted")
    client = Client(redis_server.url)
    ids = [client.submit("sleepy", {"seconds": 0.02}) for _ in range(40)]
    for job_id in ids:
        client.wait(job_id, 30)
    client.close()

    key = 'bananas_jobs_completed_total{name="sleepy",status="completed"}'
    wait_until(lambda: metrics().get(key) == 40.0, 15, "40 completions summed over both children")
    m = metrics()
    assert m["bananas_workers"] == 2.0 and m["bananas_worker_concurrency"] == 4.0
    assert m["bananas_dlq_size"] == 0.0 and m["bananas_broker_up"] == 1.0
    status, body = get(f"http://127.0.0.1:{port}/health")
    assert status == 200 and json.loads(body)["alive"] == 2


def test_trace_continues_in_a_worker_process(spawn_worker: Spawn, redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = Client(redis_server.url, middleware=[TracingMiddleware(tracer_provider=provider)])
    env = {"OTEL_SERVICE_NAME": "bananas-e2e"}  # the only configuration: a standard OTEL_* variable
    spawn_worker(redis_server.url, env=env, app="tests.e2e.otel_app:app")
    with provider.get_tracer("test").start_as_current_span("web request") as root:
        job_id = client.submit("traced")
    assert client.wait(job_id, 30).result == 2
    trace_id = root.get_span_context().trace_id
    (submit,) = [s for s in exporter.get_finished_spans() if s.name == "bananas.submit traced"]
    assert submit.context.trace_id == trace_id and submit.parent is not None

    def worker_spans() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = client.submit_and_wait("spans", {}, timeout=10)
        acks = [s for s in found if s["name"] == "bananas.ack" and s["trace_id"] == trace_id]
        return found if len(acks) == 2 else None

    spans = wait_until(worker_spans, 15, "the worker's spans")
    assert isinstance(spans, list)
    mine = [s for s in spans if s["trace_id"] == trace_id]
    executes = [s for s in mine if s["name"] == "bananas.execute traced"]
    assert len(executes) == 2 and {s["parent"] for s in executes} == {submit.context.span_id}
    assert sorted(len(s["links"]) for s in executes) == [0, 1]  # the retry links to the submit
    assert {s["name"] for s in mine} >= {"bananas.dequeue default", "inside", "bananas.ack"}
    client.close()


def test_a_worker_writes_json_logs_to_the_console_and_a_rotating_file(
    spawn_worker: Spawn, redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.client().flushall()  # no offer left by an earlier test's killed worker
    logfile = tmp_path / "logs" / "worker.log"
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "LOG_FILE_ENABLED": "true", "LOG_FILE_PATH": str(logfile),
           "LOG_FILE_LEVEL": "INFO"}  # fmt: skip
    worker = spawn_worker(redis_server.url, "--concurrency", "2", env=env)
    with Client(redis_server.url) as client:
        job_id = client.submit("noop")
        assert client.wait(job_id, 20).status.value == "completed"
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0

    def lines(text: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    console = lines(worker.output())
    ours = [d for d in console if d["logger"].startswith("bananas")]
    assert ours and all({"ts", "level", "logger", "message", "component", "log_source"} <= set(d) for d in ours)
    assert all(d["log_source"] == "application" for d in console if d not in ours)  # asyncio's, say
    [done] = [d for d in console if d.get("job_id") == job_id and "done in" in d["message"]]  # DEBUG: console only
    assert done["job_name"] == "noop" and done["duration_ms"] >= 0 and done["worker_id"]
    stored = lines(logfile.read_text())
    assert any(d["message"].startswith("worker ") and "started" in d["message"] for d in stored)
    assert all(d["level"] != "DEBUG" for d in stored)  # the file tier has a level of its own
