"""Observability: structured logs (``logs``; its tiers in ``formatter``, ``rotation``,
``elasticsearch`` and ``breaker``), metrics (``metrics``), health (``health``),
OpenTelemetry tracing (``tracing``: the middleware; ``tracer_provider``: the SDK set-up the
CLI does from ``OTEL_*``). Importing this package imports none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bananas.middleware import Middleware
    from bananas.settings import Settings


def default_middleware(settings: Settings) -> list[Middleware]:
    """The middleware the settings enable for every client and worker of an app:
    tracing when it is on and the ``otel`` extra is installed."""
    found: list[Middleware] = []
    if settings.observability.tracing:
        from bananas.observability.tracing import TracingMiddleware, otel_available

        if otel_available():
            found.append(TracingMiddleware())
    return found
