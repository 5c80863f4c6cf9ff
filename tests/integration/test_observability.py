"""Middleware hooks, the metrics snapshot, Prometheus and health endpoints and tracing,
with an in-process worker on every broker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bananas import Bananas, Context, JobStatus, PermanentError, RetryPolicy, wire
from bananas.brokers.base import Delivery, Outcome
from bananas.job import Job, new_id
from bananas.middleware import Middleware, WorkerView
from bananas.observability.health import ExporterMiddleware
from bananas.observability.logs import ContextFilter
from bananas.observability.metrics import PrometheusMiddleware
from bananas.observability.tracing import TracingMiddleware
from bananas.testing import running_worker, wait_until_async
from tests.conftest import make_settings

FAST = RetryPolicy(base_s=0.02, max_s=0.05)


class Recorder(Middleware):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.durations: list[float] = []

    def before_submit(self, job: Job) -> None:
        job.headers["x-seen"] = "1"
        self.events.append(("before_submit", job.name))

    def after_submit(self, job: Job) -> None:
        self.events.append(("after_submit", job.name))

    def worker_start(self, worker: WorkerView) -> None:
        self.events.append(("worker_start", ""))

    def worker_stop(self, worker: WorkerView) -> None:
        self.events.append(("worker_stop", ""))

    def after_dequeue(self, delivery: Delivery, worker: WorkerView) -> None:
        self.events.append(("after_dequeue", delivery.id))

    def before_execute(self, ctx: Context) -> None:
        self.events.append(("before_execute", f"{ctx.name}:{ctx.attempt}:{ctx.headers.get('x-seen')}"))

    def after_execute(self, ctx: Context | None, delivery: Delivery, outcome: Outcome, duration_s: float) -> None:
        self.durations.append(duration_s)  # checked by the test: a hook's exception is swallowed
        self.events.append(("after_execute", outcome.kind))

    def after_retry(self, ctx: Context | None, outcome: Outcome) -> None:
        self.events.append(("after_retry", str(outcome.attempts)))

    def after_dead_letter(self, ctx: Context | None, outcome: Outcome) -> None:
        self.events.append(("after_dead_letter", outcome.reason))

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        self.events.append(("after_ack", outcome.kind))


class Broken(Middleware):
    def before_execute(self, ctx: Context) -> None:
        raise RuntimeError("a broken plugin")


def names(events: list[tuple[str, str]], hook: str) -> list[str]:
    return [v for k, v in events if k == hook]


async def test_hooks_run_in_order_and_a_broken_hook_loses_nothing(broker_url: str) -> None:
    rec = Recorder()
    app = Bananas(settings=make_settings(broker_url), middleware=[rec, Broken()])

    @app.task(max_retries=1, retry=FAST)
    async def flaky(ctx: Context) -> str:
        if ctx.attempt == 1:
            raise ValueError("first time")
        return "ok"

    @app.task
    async def doomed() -> None:
        raise PermanentError("no")

    client = app.async_client()
    began = time.perf_counter()
    async with running_worker(app):
        ok = await client.submit("flaky")
        bad = await client.submit("doomed")
        assert (await client.wait(ok, 10)).status is JobStatus.COMPLETED
        assert (await client.wait(bad, 10)).status is JobStatus.FAILED
    took = time.perf_counter() - began
    await client.close()
    assert len(rec.durations) == 3 and all(0 <= d < took for d in rec.durations)
    events = rec.events
    assert names(events, "before_submit") == names(events, "after_submit") == ["flaky", "doomed"]
    assert events.index(("before_submit", "flaky")) < events.index(("after_submit", "flaky"))
    assert names(events, "worker_start") == [""] and events[-1] == ("worker_stop", "")
    assert sorted(names(events, "before_execute")) == ["doomed:1:1", "flaky:1:1", "flaky:2:1"]
    assert sorted(names(events, "after_execute")) == ["completed", "failed", "retry"]
    assert names(events, "after_retry") == ["1"] and names(events, "after_dead_letter") == ["permanent_error"]
    assert sorted(names(events, "after_ack")) == ["completed", "failed", "retry"]
    assert len(names(events, "after_dequeue")) == 3


async def test_metrics_snapshot(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))
    gate = asyncio.Event()

    @app.task(priority="high")
    async def quick(n: int) -> int:
        return n

    @app.task(max_retries=0)
    async def fails() -> None:
        raise ValueError("x")

    @app.task
    async def waits() -> None:
        await gate.wait()

    client = app.async_client()
    before_later = time.time()
    await client.submit("quick", {"n": 0}, routing_key="later")  # nobody consumes "later"
    after_later = time.time()
    async with running_worker(app, concurrency=4) as worker:
        ids = [await client.submit("quick", {"n": i}) for i in range(5)]
        ids.append(await client.submit("fails"))
        for job_id in ids:
            await client.wait(job_id, 10)
        blocker = await client.submit("waits")
        await wait_until_async(lambda: worker.busy == 1, 10, "the blocker to run")
        before_snap = time.time()
        snap = await client.metrics()
        after_snap = time.time()
        gate.set()
        await client.wait(blocker, 10)
    await client.close()
    assert snap.by_name["quick"] == {"completed": 5} and snap.by_name["fails"] == {"failed": 1}
    assert snap.by_priority[90]["completed"] == 5  # "high"
    assert snap.completed == 5 and snap.failed == 1 and snap.error_rate == pytest.approx(1 / 6)
    ran_for = after_snap - after_later  # every run was within this span
    assert snap.durations.count == 6 and 0 <= snap.durations.p50_s <= snap.durations.p95_s <= snap.durations.max_s
    assert snap.durations.max_s < ran_for
    assert snap.durations_by_name["quick"].count == 5
    assert snap.depth_by_priority["later"] == {90: 1} and snap.ready == 1
    assert snap.processing == 1 and snap.by_status["processing"] == 1
    slack = 0.01  # the brokers keep ready times to the millisecond
    assert before_snap - after_later - slack <= snap.oldest_ready_age_s["later"] <= after_snap - before_later + slack
    assert snap.worker_utilisation == pytest.approx(1 / 4) and snap.workers[0]["concurrency"] == 4
    assert before_snap - client.started_at <= snap.uptime_s <= after_snap - client.started_at


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_prometheus_and_health_endpoints_of_a_worker(broker_url: str) -> None:
    prom = PrometheusMiddleware()
    exporter = ExporterMiddleware(0, "127.0.0.1", prom)
    app = Bananas(settings=make_settings(broker_url), middleware=[prom])

    @app.task(max_retries=1, retry=FAST)
    async def flaky(ctx: Context) -> None:
        if ctx.attempt == 1:
            raise ValueError("again")

    @app.task
    async def typed(n: int) -> int:
        return n

    client = app.async_client()
    await client.submit("flaky", routing_key="elsewhere")
    async with running_worker(app) as worker:
        worker.middleware = type(worker.middleware).of([prom, exporter])  # type: ignore[union-attr]
        job_id = await client.submit("flaky")
        await client.wait(job_id, 10)
        unfit = Job(id=new_id(), name="typed", payload={"n": "x"}, created_at=time.time())
        await client.broker.enqueue([(unfit, wire.encode_job(unfit))])  # dead-lettered before it runs
        assert (await client.wait(unfit.id, 10)).status is JobStatus.FAILED
        await asyncio.wait_for(exporter.started.wait(), 10)
        assert exporter.server is not None
        base = f"http://127.0.0.1:{exporter.server.port}"
        status, body = await asyncio.to_thread(get, base + "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = await asyncio.to_thread(get, base + "/ready")
        assert status == 200 and json.loads(body)["broker"] == "ok"
        status, body = await asyncio.to_thread(get, base + "/metrics")
        text = body.decode()
        assert status == 200
        for line in (
            'bananas_jobs_enqueued_total{name="flaky",priority="50",routing_key="default"} 1.0',
            'bananas_jobs_completed_total{name="flaky",status="retry"} 1.0',
            'bananas_jobs_completed_total{name="flaky",status="completed"} 1.0',
            'bananas_retry_total{name="flaky"} 1.0',
            'bananas_queue_depth{priority="50",routing_key="elsewhere"} 1.0',
            "bananas_dlq_size 1.0",
            "bananas_broker_up 1.0",
            'bananas_workers_needed{routing_key="elsewhere"} 1.0',
            "bananas_job_duration_seconds_count",
            'bananas_oldest_job_age_seconds{routing_key="elsewhere"}',
            "bananas_scheduler_leader",
            "bananas_redelivered_total 0.0",
            'bananas_worker_active{routing_key="default"} 0.0',  # nothing running: none counted twice or never
            'bananas_dead_lettered_total{name="typed",reason="invalid_payload"} 1.0',
        ):
            assert line in text, line
        families = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE")}
        assert len(families) >= 20
        assert (await asyncio.to_thread(get, base + "/nope"))[0] == 404
    await client.close()


async def test_spans_carry_the_trace_through_headers_and_link_retries(broker_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingMiddleware(tracer_provider=provider)
    app = Bananas(settings=make_settings(broker_url), middleware=[tracing])
    tracer = provider.get_tracer("test")

    @app.task(max_retries=1, retry=FAST)
    async def flaky(ctx: Context) -> None:
        with tracer.start_as_current_span("inside"):
            if ctx.attempt == 1:
                raise ValueError("again")

    client = app.async_client()
    async with running_worker(app):
        with tracer.start_as_current_span("request") as root:
            job_id = await client.submit("flaky")
        await client.wait(job_id, 10)
        await wait_until_async(lambda: len(_named(exporter, "bananas.ack")) == 2, 10, "two ack spans")
    await client.close()
    trace_id = root.get_span_context().trace_id
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans if s.name != "request"} == {trace_id}
    (submit,) = _named(exporter, "bananas.submit flaky")
    executes = sorted(_named(exporter, "bananas.execute flaky"), key=lambda s: s.start_time or 0)
    assert [s.parent.span_id for s in executes if s.parent] == [submit.context.span_id] * 2
    assert executes[0].status.status_code.name == "ERROR" and not executes[0].links
    assert executes[1].links[0].context.span_id == submit.context.span_id
    insides = _named(exporter, "inside")
    assert {s.parent.span_id for s in insides if s.parent} == {e.context.span_id for e in executes}
    assert len(_named(exporter, "bananas.dequeue default")) == 2


async def test_jobs_dead_lettered_before_running_still_get_spans(broker_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Bananas(settings=make_settings(broker_url), middleware=[TracingMiddleware(tracer_provider=provider)])

    @app.task
    async def typed(n: int) -> int:
        return n

    client = app.async_client()
    async with running_worker(app):
        with provider.get_tracer("test").start_as_current_span("request") as root:
            missing = await client.submit("missing")
        unfit = Job(id=new_id(), name="typed", payload={"n": "x"}, created_at=time.time())
        await client.broker.enqueue([(unfit, wire.encode_job(unfit))])  # past the client's payload check
        malformed = Job(id=new_id(), name="typed", payload={}, created_at=time.time())
        await client.broker.enqueue([(malformed, b"{not json")])
        for job_id in (missing, unfit.id, malformed.id):
            assert (await client.wait(job_id, 10)).status is JobStatus.FAILED
        await wait_until_async(lambda: len(_named(exporter, "bananas.ack")) == 3, 10, "three ack spans")
    await client.close()
    [no_handler] = _named(exporter, "bananas.execute missing")
    assert no_handler.context.trace_id == root.get_span_context().trace_id
    assert (
        no_handler.status.status_code.name == "ERROR" and no_handler.attributes["bananas.dead_reason"] == "no_handler"
    )
    [payload] = _named(exporter, "bananas.execute typed")
    assert payload.attributes["bananas.dead_reason"] == "invalid_payload"
    [unreadable] = _named(exporter, "bananas.execute")
    assert unreadable.attributes["bananas.dead_reason"] == "malformed"
    assert unreadable.attributes["messaging.message.id"] == malformed.id


def _named(exporter: InMemorySpanExporter, name: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


class Captured(logging.Handler):
    """Every record of the ``bananas`` loggers, fields filled in as the log tiers see them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def where(self, text: str, **fields: object) -> list[Any]:  # records, with their extra fields
        return [r for r in self.records if text in r.getMessage()
                and all(getattr(r, k, None) == v for k, v in fields.items())]  # fmt: skip


async def test_worker_logs_every_event_with_its_fields(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))

    @app.task(priority=80)
    async def fine(ctx: Context) -> int:
        ctx.logger.info("from the handler")
        return 1

    @app.task(max_retries=1, retry=FAST)
    async def broken() -> None:
        raise RuntimeError("boom")

    captured = Captured()
    root = logging.getLogger("bananas")
    level = root.level
    root.addHandler(captured)
    root.setLevel(logging.DEBUG)
    client = app.async_client()
    began = time.monotonic()
    try:
        async with running_worker(app) as worker:
            ok = await client.submit("fine", {})
            bad = await client.submit("broken", {})
            assert (await client.wait(ok, 10)).status is JobStatus.COMPLETED
            assert (await client.wait(bad, 10)).status is JobStatus.FAILED
        wid = worker.id
        took_ms = (time.monotonic() - began) * 1e3  # every wait and run fits in this
    finally:
        root.removeHandler(captured)
        root.setLevel(level)
        await client.close()

    assert captured.where("started", component="worker", worker_id=wid)
    assert captured.where("stopp", component="worker", worker_id=wid)
    [submitted] = captured.where(f"job {ok} submitted", component="client")
    assert (submitted.job_name, submitted.priority, submitted.routing_key) == ("fine", 80, "default")
    [start] = captured.where(f"job {ok} started", component="worker", log_source="bananas_internal")
    assert (start.job_name, start.priority, start.routing_key, start.attempt, start.worker_id) == (
        "fine", 80, "default", 1, wid)  # fmt: skip
    assert 0 <= start.queue_wait_ms < took_ms
    [done] = captured.where(f"job {ok} done", job_id=ok)
    assert 0 < done.duration_ms < took_ms
    [own] = captured.where("from the handler", log_source="bananas_job")
    assert own.job_id == ok and own.job_name == "fine"
    [retry] = captured.where(f"job {bad} attempt 1 failed", component="worker", attempt=1, job_name="broken")
    assert retry.levelno == logging.INFO and retry.retry_delay_s > 0 and "boom" in retry.error
    assert "RuntimeError" in retry.traceback and 0 <= retry.duration_ms < took_ms
    [dead] = captured.where(f"job {bad} dead-lettered", attempt=2, reason="max_retries")
    assert dead.levelno == logging.WARNING and "RuntimeError" in dead.traceback and 0 <= dead.duration_ms < took_ms
    ticks = captured.where("scheduler tick", component="scheduler")
    # The retry is made ready again by the worker's own fetch (Reclaim), not by a tick: the
    # ticks log their counts as fields (at DEBUG when they changed nothing).
    assert ticks and all({"moved", "recovered", "lost"} <= vars(t).keys() for t in ticks)
    assert any(t.moved == t.recovered == t.lost == 0 and t.levelno == logging.DEBUG for t in ticks)
