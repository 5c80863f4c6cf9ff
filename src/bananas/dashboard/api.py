"""The dashboard's read-only JSON API, built on the same client calls users make.

- ``GET /api/queues``: the figures of ``bananas queues`` per routing key, plus totals.
- ``GET /api/jobs/{id}``: one job in its wire format (docs/WIRE.md); 404 when unknown.

A broker that cannot be reached answers 503 with a JSON ``error``, never a hang: the
client's calls give up within its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananas import wire
from bananas.errors import BananasError, BrokerError

if TYPE_CHECKING:
    from bananas.brokers.base import QueueStats
    from bananas.client import AsyncClient


def queue_figures(stats: Sequence[QueueStats], now: float | None = None) -> dict[str, Any]:
    """The body of ``/api/queues``: one entry per routing key and the totals.

    Args:
        stats: what ``client.queue_stats()`` returned.
        now: unix time for ``oldest_ready_age_s`` (default: now).

    Returns:
        ``{"queues": [{routing_key, ready, ready_by_priority, scheduled, processing,
        dead, oldest_ready_age_s}, ...], "total": {ready, scheduled, processing, dead}}``;
        ``ready_by_priority`` maps the priority (a string, as JSON keys are) to a count
        and leaves out empty priorities, highest first.
    """
    moment = time.time() if now is None else now
    queues = [
        {
            "routing_key": s.routing_key,
            "ready": s.ready,
            "ready_by_priority": {str(p): n for p, n in sorted(s.ready_by_priority.items(), reverse=True) if n},
            "scheduled": s.scheduled,
            "processing": s.processing,
            "dead": s.dead,
            "suspects": s.suspects,
            "oldest_ready_age_s": None if s.oldest_ready_at is None else round(max(0.0, moment - s.oldest_ready_at), 3),
        }
        for s in stats
    ]
    total = {
        "ready": sum(s.ready for s in stats),
        "scheduled": sum(s.scheduled for s in stats),
        "processing": sum(s.processing for s in stats),
        "dead": sum(s.dead for s in stats),
    }
    return {"queues": queues, "total": total}


def api_routes(client: AsyncClient) -> list[Route]:
    """``/api/queues`` and ``/api/jobs/{job_id}`` answered through ``client``."""

    async def queues(request: Request) -> Response:
        return JSONResponse(queue_figures(await client.queue_stats()))

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        found = await client.get_job(job_id)
        if found is None:
            message = f"no job {job_id!r} (unknown, or its record expired)"
            return JSONResponse({"error": "not_found", "message": message, "id": job_id}, status_code=404)
        return Response(wire.encode(found), media_type="application/json")

    return [
        Route("/api/queues", queues, methods=["GET"]),
        Route("/api/jobs/{job_id}", job, methods=["GET"]),
    ]


async def bananas_error(request: Request, exc: Exception) -> Response:
    """A library error as JSON: 503 when the broker is the trouble, else 500."""
    unavailable = isinstance(exc, BrokerError)
    body = {"error": "broker_unavailable" if unavailable else type(exc).__name__, "message": str(exc)}
    return JSONResponse(body, status_code=503 if unavailable else 500)


EXCEPTION_HANDLERS = {BananasError: bananas_error}
