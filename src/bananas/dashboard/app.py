"""``create_app(client)``: the dashboard as a starlette app (the ``dashboard`` extra).

Endpoints, all ``GET`` and read-only:

| path | answers |
| --- | --- |
| ``/health`` | liveness: 200 while the process answers (``uptime_s``) |
| ``/ready`` | readiness: 200 when the broker answers a ping within 2 s, else 503 |
| ``/metrics`` | Prometheus text: the broker-wide queue gauges (``bananas_queue_depth``, ...) |
| ``/api/queues`` | JSON figures per routing key, as ``bananas queues`` shows them |
| ``/api/jobs/{id}`` | the job in wire format, 404 JSON when unknown |

``/health``, ``/ready`` and ``/metrics`` are the handlers of
``bananas.observability.health.client_endpoints``, so ``bananas health --endpoint`` reads a
dashboard as it reads a worker. The web UI is a later issue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bananas.dashboard import MISSING_EXTRA
from bananas.errors import MissingDependencyError

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - exercised by a subprocess test
    raise MissingDependencyError(MISSING_EXTRA) from None

from bananas.dashboard.api import EXCEPTION_HANDLERS, api_routes
from bananas.observability.health import Handler, client_endpoints

if TYPE_CHECKING:
    from bananas.client import AsyncClient


def create_app(client: AsyncClient) -> Starlette:
    """Make the dashboard app around ``client``; the caller keeps (and closes) the client.

    Args:
        client: the client every endpoint reads through (its broker, its timeout).

    Returns:
        A starlette app serving the endpoints in this module's docstring.
    """
    slots = client.settings.worker.concurrency
    probes = client_endpoints(client.broker, slots_per_worker=slots)
    routes = [Route(path, _endpoint(handler), methods=["GET"]) for path, handler in probes.items()]
    return Starlette(routes=[*routes, *api_routes(client)], exception_handlers=dict(EXCEPTION_HANDLERS))


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A health/metrics handler (no request argument, our ``Response``) as a starlette endpoint."""

    async def endpoint(request: Request) -> Response:
        answer = await handler()
        return Response(answer.body, status_code=answer.status, headers={"content-type": answer.content_type})

    return endpoint


__all__ = ["create_app"]
