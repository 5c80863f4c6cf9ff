"""The dashboard app in process (httpx's ASGI transport): every endpoint, on a real
SQLite file and on an unreachable Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bananas import AsyncClient, Priority
from bananas.brokers.base import QueueStats
from bananas.dashboard.api import queue_figures
from bananas.dashboard.app import create_app
from bananas.testing import free_port


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(f"sqlite:///{tmp_path}/bananas.db")
    yield c
    await c.close()


def http(client: AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(client)), base_url="http://dashboard")


async def test_endpoints_answer_from_the_broker(client: AsyncClient) -> None:
    high = [await client.submit("noop", {"n": i}, priority=Priority.HIGH) for i in range(3)]
    await client.submit("send", {}, routing_key="email")
    async with http(client) as web:
        health, ready, metrics = [await web.get(p) for p in ("/health", "/ready", "/metrics")]
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert ready.status_code == 200 and ready.json()["broker"] == "ok"
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert f'bananas_queue_depth{{priority="{int(Priority.HIGH)}",routing_key="default"}} 3.0' in metrics.text

        queues = (await web.get("/api/queues")).json()
        by_key = {q["routing_key"]: q for q in queues["queues"]}
        assert by_key["default"]["ready"] == 3 and by_key["default"]["ready_by_priority"] == {
            str(int(Priority.HIGH)): 3
        }
        assert by_key["email"]["ready"] == 1 and queues["total"]["ready"] == 4

        job = await web.get(f"/api/jobs/{high[0]}")
        assert job.status_code == 200 and job.headers["content-type"] == "application/json"
        body = job.json()
        assert (body["id"], body["name"], body["status"], body["payload"]) == (high[0], "noop", "pending", {"n": 0})

        missing = await web.get("/api/jobs/01NOSUCHJOB")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert (await web.post("/api/queues")).status_code == 405  # read-only


async def test_unreachable_broker_is_a_503_not_a_traceback() -> None:
    client = AsyncClient(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    async with http(client) as web:
        ready = await web.get("/ready")
        assert ready.status_code == 503 and ready.json()["broker"] == "unreachable"
        for path in ("/api/queues", "/api/jobs/01ABC"):
            answer = await web.get(path)
            assert answer.status_code == 503 and answer.json()["error"] == "broker_unavailable", answer.text
        metrics = await web.get("/metrics")
        assert metrics.status_code == 200 and "bananas_broker_up 0.0" in metrics.text
    await client.close()


def test_queue_figures_match_bananas_queues() -> None:
    stats = [
        QueueStats("default", {100: 2, 50: 0, 10: 1}, scheduled=4, processing=1, dead=2, oldest_ready_at=90.0),
        QueueStats("email", {}, scheduled=1),
    ]
    body = queue_figures(stats, now=100.0)
    assert json.loads(json.dumps(body)) == body
    default, email = body["queues"]
    assert default == {
        "routing_key": "default", "ready": 3, "ready_by_priority": {"100": 2, "10": 1}, "scheduled": 4,
        "processing": 1, "dead": 2, "suspects": 0, "oldest_ready_age_s": 10.0,
    }  # fmt: skip
    assert email["ready"] == 0 and email["oldest_ready_age_s"] is None
    assert body["total"] == {"ready": 3, "scheduled": 5, "processing": 1, "dead": 2}
