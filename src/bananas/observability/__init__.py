"""Observability: structured logs (``logs``; its tiers in ``formatter``, ``rotation``,
``elasticsearch`` and ``breaker``), metrics (``metrics``), health (``health``),
OpenTelemetry tracing (``tracing``: the middleware; ``tracer_provider``: the SDK set-up the
CLI does from ``OTEL_*``). Importing this package imports the tracing middleware only
(itself importing OpenTelemetry lazily)."""

from __future__ import annotations

from bananas.middleware import Middleware
from bananas.observability.tracing import TracingMiddleware, otel_available
from bananas.settings import Settings


def default_middleware(settings: Settings) -> list[Middleware]:
    """The middleware the settings enable for every client and worker of an app:
    tracing when it is on and the ``otel`` extra is installed."""
    found: list[Middleware] = []
    if settings.observability.tracing and otel_available():
        found.append(TracingMiddleware())
    return found
