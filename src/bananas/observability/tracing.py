"""OpenTelemetry tracing as middleware (the ``otel`` extra).

Spans: ``bananas.submit`` (producer, in the submitting process), ``bananas.dequeue``,
``bananas.execute`` (consumer; the handler runs inside it, so its own spans nest) and
``bananas.ack`` in the worker. The W3C trace context travels in the job's ``headers``
(``traceparent``, ``tracestate``), so a trace started by the submitting service
continues in the worker. Every attempt is a child of the submit span; a retry also
carries a link to it (``bananas.link = retry_of``) and its attempt number.

Nothing is configured here: spans go to the global tracer provider (or the one passed
in). The application, ``opentelemetry-instrument``, or, for processes started by the
``bananas`` command when neither did, ``bananas.observability.tracer_provider`` (from the
standard ``OTEL_*`` variables) installs it.
"""

from __future__ import annotations

import time
from typing import Any

from bananas.brokers.base import Delivery, Outcome
from bananas.context import Context
from bananas.errors import MissingDependencyError
from bananas.job import Job
from bananas.middleware import Middleware, WorkerView

#: Most spans kept open at once (a submit whose enqueue failed is never ended).
MAX_OPEN = 10_000


def otel_available() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


class TracingMiddleware(Middleware):
    """Spans for submit, dequeue, execute and ack, with context propagation in headers.

    Args:
        tracer_name: the instrumentation scope.
        tracer_provider: default: the global one (what ``OTEL_*``/the app configured).
    """

    def __init__(self, tracer_name: str = "bananas", tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError:
            raise MissingDependencyError('tracing needs OpenTelemetry: pip install "bananas[otel]"') from None
        self._trace = trace
        self._context = context
        self._propagate = propagate
        self._tracer = trace.get_tracer(tracer_name, tracer_provider=tracer_provider)
        self._submits: dict[str, Any] = {}
        self._dequeued: dict[str, int] = {}
        self._running: dict[str, tuple[Any, Any, int]] = {}  # id -> (span, token, ended ns)

    # --- client side -----------------------------------------------------------------
    def before_submit(self, job: Job) -> None:
        span = self._tracer.start_span(
            f"bananas.submit {job.name}",
            kind=self._trace.SpanKind.PRODUCER,
            attributes=_attributes(job.id, job.name, job.routing_key, job.priority),
        )
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        job.headers.update(carrier)
        if len(self._submits) >= MAX_OPEN:
            self._submits.clear()
        self._submits[job.id] = span

    def after_submit(self, job: Job) -> None:
        span = self._submits.pop(job.id, None)
        if span is not None:
            span.end()

    # --- worker side -----------------------------------------------------------------
    def after_dequeue(self, delivery: Delivery, worker: WorkerView) -> None:
        if len(self._dequeued) >= MAX_OPEN:
            self._dequeued.clear()
        self._dequeued[delivery.id] = time.time_ns()

    def before_execute(self, ctx: Context) -> None:
        parent = self._propagate.extract(ctx.headers)
        attrs = _attributes(ctx.job_id, ctx.name, ctx.routing_key, ctx.priority)
        attrs["messaging.message.delivery_attempt"] = ctx.attempt
        dequeued = self._dequeued.pop(ctx.job_id, None)
        if dequeued is not None:
            self._tracer.start_span(
                f"bananas.dequeue {ctx.routing_key}", context=parent, kind=self._trace.SpanKind.CONSUMER,
                attributes=attrs, start_time=dequeued,
            ).end()  # fmt: skip
        links = []
        if ctx.attempt > 1:
            origin = self._trace.get_current_span(parent).get_span_context()
            if origin.is_valid:
                links.append(self._trace.Link(origin, {"bananas.link": "retry_of"}))
        span = self._tracer.start_span(
            f"bananas.execute {ctx.name}", context=parent, kind=self._trace.SpanKind.CONSUMER,
            attributes=attrs, links=links,
        )  # fmt: skip
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        self._running[ctx.job_id] = (span, token, 0)

    def after_execute(self, ctx: Context | None, delivery: Delivery, outcome: Outcome, duration_s: float) -> None:
        entry = self._running.pop(delivery.id, None)
        if entry is None:
            if outcome.kind != "failed":
                return
            entry = self._dead_on_arrival(ctx, delivery)
        span, token, _ = entry
        span.set_attribute("bananas.outcome", outcome.kind)
        if outcome.kind != "completed":
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, outcome.error[:500]))
            if outcome.reason:
                span.set_attribute("bananas.dead_reason", outcome.reason)
        span.end()
        if token is not None:
            self._context.detach(token)
        if len(self._running) >= MAX_OPEN:
            self._running.clear()
        self._running[delivery.id] = (span, None, time.time_ns())

    def _dead_on_arrival(self, ctx: Context | None, delivery: Delivery) -> tuple[Any, Any, int]:
        """Spans for a job dead-lettered before its handler ran (no handler, a payload that
        does not fit: in the submitter's trace; malformed: a trace of its own, the headers
        being unreadable), so that the trace shows where it ended."""
        if ctx is not None:
            self.before_execute(ctx)
            return self._running.pop(delivery.id)
        self._dequeued.pop(delivery.id, None)
        span = self._tracer.start_span(
            "bananas.execute", kind=self._trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "bananas", "messaging.message.id": delivery.id,
                        "messaging.destination.name": delivery.routing_key},
        )  # fmt: skip
        return span, None, 0

    def after_ack(self, outcome: Outcome, accepted: bool) -> None:
        entry = self._running.pop(outcome.id, None)
        if entry is None:
            return
        execute_span, _, ended = entry
        parent = self._trace.set_span_in_context(execute_span)
        span = self._tracer.start_span("bananas.ack", context=parent, start_time=ended or None)
        span.set_attribute("bananas.accepted", accepted)
        span.end()


def _attributes(job_id: str, name: str, routing_key: str, priority: int) -> dict[str, Any]:
    return {
        "messaging.system": "bananas",
        "messaging.message.id": job_id,
        "messaging.destination.name": routing_key,
        "bananas.job.name": name,
        "bananas.job.priority": priority,
    }
