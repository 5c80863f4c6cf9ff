"""A worker app whose process records its spans in memory (the OpenTelemetry SDK's
``InMemorySpanExporter``); the ``spans`` task hands them to the test."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bananas import Bananas, Context, RetryPolicy

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

app = Bananas()  # tracing is on because the test sets OTEL_SERVICE_NAME: nothing else


@app.task(max_retries=2, retry=RetryPolicy(base_s=0.02, max_s=0.05))
async def traced(ctx: Context) -> int:
    with trace.get_tracer("handler").start_as_current_span("inside"):
        if ctx.attempt == 1:
            raise ValueError("first attempt fails")
    return ctx.attempt


@app.task
async def spans() -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "trace_id": s.context.trace_id,
            "span_id": s.context.span_id,
            "parent": s.parent.span_id if s.parent else None,
            "links": [link.context.span_id for link in s.links],
        }
        for s in exporter.get_finished_spans()
        if not s.name.startswith("bananas.submit spans")
    ]
