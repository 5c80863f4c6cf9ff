"""Zero-configuration tracing across a real worker process: the worker's app configures
no OpenTelemetry, only OTEL_* variables are set, and its spans reach a small OTLP/HTTP
receiver in the test, in the trace the submitting process started."""

from __future__ import annotations

import gzip
import http.server
import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bananas import Client
from bananas.observability.tracing import TracingMiddleware
from bananas.testing import RedisServer
from tests.e2e.conftest import ROOT, WorkerProcess

Spawn = Callable[..., WorkerProcess]


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: int
    span_id: int
    parent_span_id: int
    resource: dict[str, str]


class OTLPReceiver:
    """``POST /v1/traces`` (OTLP/HTTP protobuf) on a free local port; waits are on a condition."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.paths: list[str] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.received(self.path, ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def received(self, path: str, request: ExportTraceServiceRequest) -> None:
        with self._changed:
            self.paths.append(path)
            for rs in request.resource_spans:
                resource = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        parent = int.from_bytes(s.parent_span_id, "big") if s.parent_span_id else 0
                        self.spans.append(ReceivedSpan(s.name, int.from_bytes(s.trace_id, "big"),
                                                       int.from_bytes(s.span_id, "big"), parent, resource))  # fmt: skip
            self._changed.notify_all()

    def wait_for(self, name: str, trace_id: int, timeout: float) -> ReceivedSpan:
        def match() -> ReceivedSpan | None:
            return next((s for s in self.spans if s.name == name and s.trace_id == trace_id), None)

        with self._changed:
            found = self._changed.wait_for(match, timeout)
        assert found is not None, f"no {name!r} span in trace {trace_id:032x} within {timeout} s: {self.spans}"
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver()
    yield r
    r.close()


def submit_traced(url: str, name: str) -> tuple[int, int]:
    """Submit from this process with a TracingMiddleware on an in-memory provider; wait for
    the job; (trace id, span id) of its submit span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Client(url, middleware=[TracingMiddleware(tracer_provider=provider)]) as client:
        job_id = client.submit(name)
        assert client.wait(job_id, 30).status.value == "completed"
    (submit,) = [s for s in exporter.get_finished_spans() if s.name == f"bananas.submit {name}"]
    return submit.context.trace_id, submit.context.span_id


def otel_env(receiver: OTLPReceiver, service: str, delay_ms: int) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
    }


def test_worker_exports_spans_with_no_configuration_but_otel_variables(
    spawn_worker: Spawn, redis_server: RedisServer, receiver: OTLPReceiver
) -> None:
    redis_server.client().flushall()
    worker = spawn_worker(redis_server.url, env=otel_env(receiver, "zero-config-worker", 100))
    trace_id, submit_span = submit_traced(redis_server.url, "noop")
    execute = receiver.wait_for("bananas.execute noop", trace_id, 15)
    assert execute.parent_span_id == submit_span
    assert execute.resource["service.name"] == "zero-config-worker"
    receiver.wait_for("bananas.ack", trace_id, 5)
    assert set(receiver.paths) == {"/v1/traces"}
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()


def test_spans_are_flushed_when_a_supervised_worker_stops(
    spawn_worker: Spawn, redis_server: RedisServer, receiver: OTLPReceiver
) -> None:
    """A batch delay of a minute: the spans can only arrive through the flush at exit of
    the supervised child that SIGTERM (forwarded by its supervisor) stopped."""
    redis_server.client().flushall()
    worker = spawn_worker(redis_server.url, "--processes", "1", env=otel_env(receiver, "flushed", 60_000))
    trace_id, _ = submit_traced(redis_server.url, "noop")
    assert receiver.spans == []
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert receiver.wait_for("bananas.execute noop", trace_id, 5).resource["service.name"] == "flushed"


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        (["submit", "noop"], {"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER: unknown exporter 'jaeger'"),
        (
            ["worker", "--app", "tests.e2e.app:app"],
            {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "pip install opentelemetry-exporter-otlp-proto-grpc",
        ),
        (  # checked once by the supervisor, not by children restarted forever
            ["worker", "--app", "tests.e2e.app:app", "--processes", "2"],
            {"OTEL_TRACES_EXPORTER": "otlp,zipkin"},
            "unknown exporter 'zipkin'",
        ),
    ],
)
def test_bad_tracing_configuration_is_a_one_line_error(command: list[str], env: dict[str, str], message: str) -> None:
    if "grpc" in env.values() and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None:
        pytest.skip("the gRPC exporter is installed here")
    cmd = [sys.executable, "-m", "bananas", *command, "--url", "redis://127.0.0.1:1/0"]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=full_env, check=False, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
