"""Bodies nothing can decode and results nothing can encode: dead-lettered with a reason,
on every broker, while the worker and the jobs beside them go on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bananas import Bananas, JobStatus
from bananas.job import Job, new_id
from bananas.testing import running_worker

MakeApp = Callable[..., Bananas]

#: A job envelope whose payload is nested far deeper than any decoder recurses.
DEEP = 100_000


def _deep_body(job: Job) -> bytes:
    head = f'{{"v":1,"id":"{job.id}","name":"{job.name}","payload":{{"a":'.encode()
    return head + b"[" * DEEP + b"]" * DEEP + b"}}"


async def test_a_body_nested_too_deeply_is_dead_lettered_once_and_readable(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    async def fine(a: Any = None) -> str:
        return "fine"

    client = app.async_client()
    deep = Job(id=new_id(), name="fine", payload={}, created_at=time.time())
    await client.broker.enqueue([(deep, _deep_body(deep))])
    async with running_worker(app):
        job = await client.wait(deep.id, 10)
        assert await client.submit_and_wait("fine", {}, timeout=10) == "fine"
    assert job.status is JobStatus.FAILED and job.reason == "malformed" and job.attempts == 1
    assert job.error is not None and "nested too deeply" in job.error
    await client.close()


async def test_a_result_that_cannot_be_encoded_fails_the_job_with_its_reason(make_app: MakeApp) -> None:
    app = make_app()

    class Opaque:
        pass

    @app.task
    async def opaque() -> Any:
        return Opaque()

    @app.task
    async def loop() -> Any:
        ring: list[Any] = []
        ring.append(ring)
        return ring

    client = app.async_client()
    async with running_worker(app):
        jobs = [await client.wait(await client.submit(name, {}), 10) for name in ("opaque", "loop")]
    for job in jobs:
        assert job.status is JobStatus.FAILED and job.reason == "result_serialization", job
        assert job.attempts == 1 and job.error is not None and "not JSON-serialisable" in job.error
    assert jobs[1].error is not None and "refers to itself" in jobs[1].error
    await client.close()


async def test_raw_messages_that_are_not_jobs_are_dead_lettered_once_with_their_bytes(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    async def fine() -> str:
        return "fine"

    client = app.async_client()
    bodies = {
        "invalid JSON": b"{this is not json",
        "not an object": b"[1, 2, 3]",
        "missing fields": b'{"v": 1, "payload": {}}',
        "wrong types": b'{"v": 1, "id": 7, "name": ["fine"], "payload": "x"}',
        "non-UTF-8": b'{"v": 1, "id": "\xff\xfe", "name": "fine", "payload": {}}',
        "unknown version": b'{"v": 99, "id": "x", "name": "fine", "payload": {}}',
        "empty": b"",
        "huge garbage": b"\x00\x01garbage" * 1000,
    }
    jobs = {what: Job(id=new_id(), name="fine", payload={}, created_at=time.time()) for what in bodies}
    await client.broker.enqueue([(jobs[what], body) for what, body in bodies.items()])
    async with running_worker(app):
        found = {what: await client.wait(job.id, 10) for what, job in jobs.items()}
        assert await client.submit_and_wait("fine", {}, timeout=10) == "fine"  # valid jobs beside them run
    for what, job in found.items():
        assert job.status is JobStatus.FAILED and job.reason == "malformed" and job.attempts == 1, (what, job)
        assert job.raw == bodies[what][:4096].decode("utf-8", "backslashreplace"), what
    assert "\\xff\\xfe" in (found["non-UTF-8"].raw or "")
    assert "malformed job JSON" in (found["invalid JSON"].error or "")
    assert "unknown job envelope version 99" in (found["unknown version"].error or "")
    await client.close()
