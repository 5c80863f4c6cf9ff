"""Metrics, health and tracing for processes started from the command line.

``--metrics-port N`` (BANANAS_METRICS_PORT) serves ``/metrics``, ``/health`` and
``/ready``. With ``--processes P`` the supervisor serves them: every child writes its
counters into a shared ``PROMETHEUS_MULTIPROC_DIR`` and the supervisor adds them up.
``tracing(settings)`` sets up OpenTelemetry from the ``OTEL_*`` variables for the
duration of a command (each supervised child sets up its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from bananas import brokers
from bananas.cli.recycle import Recycle
from bananas.middleware import Middleware, WorkerView
from bananas.observability.health import STALE_FETCH_S, HTTPServer, Response, broker_ready
from bananas.settings import Settings
from bananas.worker.supervisor import Supervisor

logger = logging.getLogger(__name__)

#: The variable prometheus-client reads (at import) to write metrics to files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def tracing(settings: Settings) -> Iterator[None]:
    """Zero-configuration tracing around a command: install a tracer provider and
    exporters when the settings turn tracing on and the app set none, and flush them when
    the block ends (a worker stopped by SIGTERM leaves it normally).

    Raises:
        ConfigurationError: a bad ``OTEL_TRACES_EXPORTER`` or OTLP protocol.
        MissingDependencyError: the exporter's package is missing.
    """
    from bananas.observability.tracer_provider import setup_tracing, shutdown_tracing

    provider = setup_tracing(settings, os.environ)
    try:
        yield
    finally:
        if provider is not None:
            shutdown_tracing(provider)


def with_metrics_port(settings: Settings, port: int | None) -> Settings:
    """``--metrics-port`` overrides BANANAS_METRICS_PORT."""
    if port is None:
        return settings
    settings = dataclasses.replace(
        settings, observability=dataclasses.replace(settings.observability, metrics_port=port)
    )
    settings.validate()
    return settings


class FreezeAtStart(Middleware):
    """``gc.freeze()`` once the worker is set up: what exists then (modules, the app, the
    worker) lives as long as the process, and leaving it out of the collector's full
    passes makes them short pauses. A process-wide effect, so only the CLI's worker
    processes install it, never the library."""

    def worker_start(self, worker: WorkerView) -> None:
        gc.freeze()


def worker_middleware(
    settings: Settings, environ: Mapping[str, str], recycle: Recycle | None = None
) -> list[Middleware]:
    """Middleware of a CLI worker process: ``FreezeAtStart``, Prometheus (and the HTTP
    exporter) when metrics are on, and ``recycle`` when it has a limit (counted in
    ``bananas_worker_recycled_total`` when metrics are on).

    A supervised child (``PROMETHEUS_MULTIPROC_DIR`` set by its supervisor) only counts;
    its supervisor serves the endpoints.
    """
    obs = settings.observability
    supervised = bool(environ.get(MULTIPROC_ENV))
    limits: list[Middleware] = [recycle] if recycle is not None and recycle.limited else []
    if obs.metrics_port is None and not supervised:
        return [FreezeAtStart(), *limits]
    from bananas.observability.metrics import PrometheusMiddleware

    prometheus = PrometheusMiddleware()
    if recycle is not None:
        recycle.count = lambda reason: prometheus.recycled.labels(reason).inc()
    found: list[Middleware] = [prometheus, FreezeAtStart(), *limits]
    if obs.metrics_port is not None and not supervised:
        from bananas.observability.health import ExporterMiddleware

        found.append(ExporterMiddleware(obs.metrics_port, obs.metrics_host, prometheus))
    return found


def supervisor_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The children's environment: with a metrics port, a fresh multi-process directory."""
    if settings.observability.metrics_port is None:
        return None
    path = tempfile.mkdtemp(prefix="bananas-metrics-")
    return {**environ, MULTIPROC_ENV: path}


async def supervise(supervisor: Supervisor, settings: Settings) -> int:
    """Run the supervisor, serving the children's summed metrics and health when asked."""
    obs = settings.observability
    path = (supervisor.env or {}).get(MULTIPROC_ENV)
    if obs.metrics_port is None or path is None:
        return await supervisor.run()
    from prometheus_client import CollectorRegistry

    from bananas.observability.metrics import BrokerCollector, exposition, multiprocess_registry, sync_stats

    broker = brokers.from_url(settings.url)
    queues = CollectorRegistry(auto_describe=False)
    queues.register(BrokerCollector(sync_stats(broker.clone), slots_per_worker=settings.worker.concurrency))

    def metrics() -> bytes:
        _forget_dead(path, supervisor.pids)
        return exposition(multiprocess_registry(path), queues)

    async def health() -> Response:
        alive = len(supervisor.pids)
        _forget_dead(path, supervisor.pids)
        lag = _gauge(multiprocess_registry(path), "bananas_fetch_loop_lag_seconds")
        ok = alive == supervisor.processes and (lag is None or lag < STALE_FETCH_S + 5.0)
        return Response.json(ok, {"processes": supervisor.processes, "alive": alive, "pids": supervisor.pids,
                                  "max_fetch_lag_s": lag, "restarts": supervisor.restarts})  # fmt: skip

    async def ready() -> Response:
        return await broker_ready(broker, stopping=supervisor.stopping)

    async def metrics_route() -> Response:
        return Response(200, await asyncio.to_thread(metrics), "text/plain; version=0.0.4; charset=utf-8")

    server = HTTPServer(
        {"/health": health, "/ready": ready, "/metrics": metrics_route}, obs.metrics_host, obs.metrics_port
    )
    await server.start()
    try:
        return await supervisor.run()
    finally:
        await server.stop()
        await broker.close()
        shutil.rmtree(path, ignore_errors=True)


def _forget_dead(path: str, pids: list[int]) -> None:
    """Drop the live gauges of children that are gone (restarted or stopped)."""
    from prometheus_client import multiprocess

    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) not in pids:
            multiprocess.mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def _gauge(registry: object, name: str) -> float | None:
    """The largest sample of a gauge in a collected registry (None when absent)."""
    values = [s.value for m in registry.collect() for s in m.samples if s.name == name]  # type: ignore[attr-defined]
    return max(values) if values else None


__all__ = ["MULTIPROC_ENV", "supervise", "supervisor_env", "tracing", "with_metrics_port", "worker_middleware"]
