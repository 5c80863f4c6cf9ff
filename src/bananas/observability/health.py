"""Health and readiness (``/health``, ``/ready``) and the small HTTP server that serves
them with ``/metrics`` on workers (``--metrics-port``).

- ``/health`` (liveness): the worker's fetch loop came back from the broker recently (an
  idle worker blocks at most ``IDLE_BLOCK_S``), or every slot is busy. A loop that
  silently stopped is rebuilt by the worker's watchdog; ``/health`` fails meanwhile.
- ``/ready`` (readiness): the broker answers a ping within ``PING_TIMEOUT_S`` and the
  process is not shutting down.

Both answer JSON; 200 when good, 503 when not. The dashboard serves the same endpoints
with ``client_endpoints(broker)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bananas.brokers.base import Broker
from bananas.errors import BananasError
from bananas.middleware import Middleware, WorkerView
from bananas.observability.metrics import BrokerCollector, PrometheusMiddleware, exposition, sync_stats

logger = logging.getLogger(__name__)

#: Longest a readiness ping waits for the broker.
PING_TIMEOUT_S = 2.0
#: A fetch loop that has not come back for this long (beyond an idle block) is unhealthy.
STALE_FETCH_S = 10.0


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, content type and body."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, ok: bool, data: Mapping[str, Any]) -> Response:
        payload = {"status": "ok" if ok else "unavailable", **data}
        return cls(200 if ok else 503, json.dumps(payload, default=str).encode())


Handler = Callable[[], Awaitable[Response]]


async def broker_ready(broker: Broker, *, stopping: bool = False) -> Response:
    """Readiness of a process that depends on ``broker``."""
    started = time.perf_counter()
    error = None
    try:
        await asyncio.wait_for(broker.ping(), PING_TIMEOUT_S)
    except (BananasError, OSError, TimeoutError) as exc:
        error = str(exc) or type(exc).__name__
    data: dict[str, Any] = {"broker": "unreachable" if error else "ok", "shutting_down": stopping}
    if error:
        data["error"] = error
    else:
        data["ping_ms"] = round((time.perf_counter() - started) * 1e3, 2)
    return Response.json(error is None and not stopping, data)


def worker_live(worker: WorkerView) -> Response:
    """Liveness of one worker: its fetch loop made progress recently."""
    stalled = worker.fetch_stalled_s
    data = {
        "worker_id": worker.id,
        "fetch_stalled_s": round(stalled, 3),
        "fetch_restarts": worker.fetch_restarts,
        "running": worker.busy,
        "concurrency": worker.settings.worker.concurrency,
        "processed": worker.processed,
        "uptime_s": round(time.time() - worker.started_at, 3),
    }
    return Response.json(stalled < STALE_FETCH_S, data)


def worker_endpoints(worker: WorkerView, metrics: Callable[[], bytes] | None) -> dict[str, Handler]:
    """``/health``, ``/ready`` and (when given) ``/metrics`` of an in-process worker."""

    async def health() -> Response:
        return worker_live(worker)

    async def ready() -> Response:
        return await broker_ready(worker.broker, stopping=worker.stopping)

    routes: dict[str, Handler] = {"/health": health, "/ready": ready}
    if metrics is not None:
        routes["/metrics"] = _metrics_handler(metrics)
    return routes


def client_endpoints(broker: Broker, *, slots_per_worker: int = 10) -> dict[str, Handler]:
    """``/health``, ``/ready`` and ``/metrics`` for a process built around a client (the
    dashboard): liveness is the process answering, readiness ``broker``, metrics the
    queue figures of ``BrokerCollector``."""
    started = time.time()

    async def health() -> Response:
        return Response.json(True, {"uptime_s": round(time.time() - started, 3)})

    async def ready() -> Response:
        return await broker_ready(broker)

    def metrics() -> bytes:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(BrokerCollector(sync_stats(broker.clone), slots_per_worker=slots_per_worker))
        return exposition(registry)

    return {"/health": health, "/ready": ready, "/metrics": _metrics_handler(metrics)}


def _metrics_handler(render: Callable[[], bytes]) -> Handler:
    async def metrics() -> Response:
        body = await asyncio.to_thread(render)  # scrapes never block the event loop
        return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")

    return metrics


class HTTPServer:
    """A tiny asyncio HTTP/1.1 server for GET on a few paths (no dependency needed).

    Args:
        routes: path -> coroutine returning a ``Response``.
        host: interface to bind.
        port: port (0 picks a free one; see ``port`` after ``start``).
    """

    def __init__(self, routes: Mapping[str, Handler], host: str = "0.0.0.0", port: int = 0) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("serving %s on port %d", ", ".join(sorted(self.routes)), self.port, extra={"component": "api"})

    def close(self) -> None:
        """Stop accepting connections now (from sync code; ``stop`` also waits)."""
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                parts = request.decode("latin-1").split()
                path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
                handler = self.routes.get(path)
                if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                    response = Response(405, b"method not allowed\n", "text/plain")
                elif handler is None:
                    response = Response(404, b"not found\n", "text/plain")
                else:
                    response = await handler()
                head = (
                    f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'OK')}\r\n"
                    f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
                    "Connection: close\r\n\r\n"
                )
                writer.write(head.encode() + (response.body if parts[0] != "HEAD" else b""))
                await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        except Exception:
            logger.exception("health/metrics request failed", extra={"component": "api"})
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class ExporterMiddleware(Middleware):
    """Serves ``/health``, ``/ready`` and ``/metrics`` for the worker it is installed in.

    Args:
        port: TCP port (0: a free one, see ``server.port``).
        host: interface to bind.
        prometheus: the worker's ``PrometheusMiddleware``; its registry and a
            ``BrokerCollector`` make up ``/metrics`` (absent: no ``/metrics``).
    """

    def __init__(self, port: int, host: str = "0.0.0.0", prometheus: PrometheusMiddleware | None = None) -> None:
        self.port = port
        self.host = host
        self.prometheus = prometheus
        self.server: HTTPServer | None = None
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def worker_start(self, worker: WorkerView) -> None:
        metrics = None
        if self.prometheus is not None:
            from prometheus_client import CollectorRegistry

            queues = CollectorRegistry(auto_describe=False)
            slots = worker.settings.worker.concurrency
            queues.register(BrokerCollector(sync_stats(worker.broker.clone), slots_per_worker=slots))
            registry = self.prometheus.registry

            def metrics() -> bytes:
                return exposition(registry, queues)

        self.server = HTTPServer(worker_endpoints(worker, metrics), self.host, self.port)
        self._task = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        assert self.server is not None
        try:
            await self.server.start()
        except OSError as exc:
            logger.error("cannot serve health/metrics on port %d: %s", self.port, exc, extra={"component": "api"})
        self.started.set()

    def worker_stop(self, worker: WorkerView) -> None:
        if self.server is not None:
            self.server.close()
