"""The task catalogue: workers publish their tasks; a client that does not import the
handlers submits with their defaults, gets payload errors at submit, and the precedence
submit option > task decorator > catalogue > worker's settings > built-in holds."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bananas import AsyncClient, Bananas, Client, Context, JobStatus, PayloadError, Priority, RetryPolicy
from bananas.settings import JobDefaults
from bananas.testing import running_worker
from bananas.worker import Worker
from tests.conftest import make_settings


def email_app(url: str) -> Bananas:
    app = Bananas(settings=make_settings(url, routing_keys=("email",)))

    @app.task(routing_key="email", priority="high", max_retries=5, timeout=30, retry=RetryPolicy(base_s=2.0))
    async def send_email(to: str, subject: str, body: str = "") -> dict[str, str]:
        """Send one email.

        Longer text that is not the summary."""
        return {"to": to, "status": "sent"}

    @app.task
    def count(ctx: Context, n: int) -> int:
        return n

    return app


async def published(worker: Worker) -> None:
    await asyncio.wait_for(worker.heartbeat.published.wait(), 10)


async def test_workers_publish_their_tasks(broker_url: str) -> None:
    app = email_app(broker_url)
    async with running_worker(app) as worker, AsyncClient(broker_url) as client:
        await published(worker)
        found = {t.name: t for t in await client.tasks()}
        send = found["send_email"]
        assert (send.routing_key, send.priority, send.max_retries, send.timeout_s) == ("email", 90, 5, 30.0)
        assert (send.retry.base_s, send.summary) == (2.0, "Send one email.")
        assert set(send.workers) == {worker.id}
        props = send.payload_schema["$defs"]["send_email_payload"]
        assert set(props["properties"]) == {"to", "subject", "body"} and props["required"] == ["to", "subject"]
        assert send.result_schema == {"type": "object", "additionalProperties": {"type": "string"}}
        counted = found["count"]  # no options: the worker's settings apply; Context is not in the schema
        assert (counted.routing_key, counted.priority, counted.max_retries, counted.timeout_s) == (
            "default", None, None, None,
        )  # fmt: skip
        assert set(counted.payload_schema["$defs"]["count_payload"]["properties"]) == {"n"}
    async with AsyncClient(broker_url) as client:  # the stopped worker withdrew itself
        assert {t.name: t.workers for t in await client.tasks()}["send_email"] == {}


async def test_a_client_without_the_handlers_submits_with_the_catalogue_defaults(broker_url: str) -> None:
    app = email_app(broker_url)  # the worker serves only the "email" routing key
    async with running_worker(app) as worker:
        await published(worker)
        async with AsyncClient(broker_url) as client:
            job_id = await client.submit("send_email", {"to": "a@b.c", "subject": "hi"})
            job = await client.wait(job_id, 10)
            assert (job.status, job.routing_key, job.priority) == (JobStatus.COMPLETED, "email", 90)
            assert (job.max_retries, job.timeout, job.result) == (5, 30.0, {"to": "a@b.c", "status": "sent"})
            explicit = await client.get_job(
                await client.submit("send_email", {"to": "x", "subject": "y"}, priority="low", max_retries=1,
                                    timeout="5s", delay=3600)
            )  # fmt: skip
            assert explicit is not None
            assert (explicit.priority, explicit.max_retries, explicit.timeout) == (int(Priority.LOW), 1, 5.0)
            with pytest.raises(PayloadError, match="subject") as caught:
                await client.submit("send_email", {"to": "a@b.c"})
            assert caught.value.field == "subject"
            with pytest.raises(PayloadError) as wrong_type:
                await client.submit("send_email", {"to": 5, "subject": "hi"})
            assert wrong_type.value.field == "to" and "task catalogue" in str(wrong_type.value)


def test_the_sync_client_reads_the_catalogue_too(broker_url: str) -> None:
    app = email_app(broker_url)

    async def serve_until_published(ready: asyncio.Event, done: asyncio.Event) -> None:
        async with running_worker(app) as worker:
            await published(worker)
            ready.set()
            await done.wait()

    loop = asyncio.new_event_loop()
    ready, done = asyncio.Event(), asyncio.Event()
    serving = loop.create_task(serve_until_published(ready, done))
    loop.run_until_complete(asyncio.wait_for(ready.wait(), 10))
    with Client(broker_url) as client:
        job = client.get_job(client.submit("send_email", {"to": "a", "subject": "b"}))
        assert job is not None and (job.routing_key, job.priority, job.max_retries) == ("email", 90, 5)
        assert [t.name for t in client.tasks()] == ["count", "send_email"]
        with pytest.raises(PayloadError):
            client.submit_many([("send_email", {"to": "a"})])
    done.set()
    loop.run_until_complete(serving)
    loop.close()


async def test_the_workers_settings_apply_to_jobs_without_their_own(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))
    attempts: list[int] = []

    @app.task(retry=RetryPolicy(base_s=0.01, jitter=0))
    def flaky(ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("boom")

    worker_settings = dataclasses.replace(app.settings, jobs=JobDefaults(max_retries=1))
    app.configure(worker_settings)
    submitter = dataclasses.replace(app.settings, jobs=JobDefaults(max_retries=7))  # the submitter's own MAX_RETRIES
    async with running_worker(app), AsyncClient(broker_url, settings=submitter) as client:
        job_id = await client.submit("flaky")
        stored = await client.get_job(job_id)
        assert stored is not None and stored.max_retries is None and stored.timeout is None
        job = await client.wait(job_id, 15)
    assert job.status is JobStatus.FAILED and job.attempts == 2 and attempts == [1, 2]  # 1 retry: the worker's


async def test_the_task_decorator_on_the_worker_beats_its_settings(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))

    @app.task(max_retries=0, retry=RetryPolicy(base_s=0.01, jitter=0))
    def once() -> None:
        raise RuntimeError("boom")

    app.configure(dataclasses.replace(app.settings, jobs=JobDefaults(max_retries=4)))
    async with running_worker(app), AsyncClient(broker_url) as client:  # the client knows no tasks, reads none
        client.catalogue.replace([], 1e18)  # as if read just now and found empty
        job = await client.wait(await client.submit("once"), 15)
    assert job.status is JobStatus.FAILED and job.attempts == 1


async def test_the_workers_job_timeout_applies_to_jobs_without_their_own(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))

    @app.task
    async def slow() -> None:
        await asyncio.sleep(30)

    app.configure(dataclasses.replace(app.settings, jobs=JobDefaults(timeout_s=0.05, max_retries=0)))
    async with running_worker(app), AsyncClient(broker_url) as client:
        job = await client.wait(await client.submit("slow"), 15)
    assert job.status is JobStatus.FAILED and job.error is not None and "timed out after 0.05 s" in job.error


async def test_the_task_declared_in_the_submitting_process_beats_the_catalogue(broker_url: str) -> None:
    app = email_app(broker_url)
    async with running_worker(app) as worker:
        await published(worker)
        mine = Bananas(broker_url)  # another service declaring its own send_email, with other defaults

        @mine.task(name="send_email", routing_key="outbox", priority=20)
        async def send_email(to: str) -> None:
            return None

        async with mine.async_client() as client:
            job = await client.get_job(await client.submit("send_email", {"to": "a"}))
            assert job is not None and (job.routing_key, job.priority, job.max_retries) == ("outbox", 20, None)
            with pytest.raises(PayloadError):  # checked against the local handler, which has no subject
                await client.submit("send_email", {"to": "a", "subject": "x"})


def test_clients_without_url_follow_the_same_lookup_as_bananas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/3")
    assert Client().url == AsyncClient().url == Bananas().url == "redis://127.0.0.1:1/3"
    monkeypatch.setenv("BANANAS_URL", "sqlite:///elsewhere.db")
    assert Client().url == AsyncClient().url == Bananas().url == "sqlite:///elsewhere.db"
    monkeypatch.delenv("BANANAS_URL")
    monkeypatch.delenv("REDIS_URL")
    assert Client().url == AsyncClient().url == "sqlite:///bananas.db"
