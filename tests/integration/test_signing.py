"""Signed jobs on every broker: a worker with BANANAS_SIGNING_KEYS runs what its keys
signed and dead-letters an altered or unsigned job as ``signature_invalid`` unrun."""

from __future__ import annotations

import dataclasses

from bananas import Bananas, JobStatus
from bananas.job import Job
from bananas.settings import SigningSettings
from bananas.signing import Signer
from bananas.submission import JobSpec
from bananas.testing import running_worker
from tests.conftest import make_settings

NEW, OLD = "new-key-" + "n" * 24, "old-key-" + "o" * 24


def signed_app(url: str, *keys: str, required: bool = True) -> tuple[Bananas, list[str]]:
    settings = dataclasses.replace(make_settings(url), signing=SigningSettings(keys, required))
    app = Bananas(settings=settings)
    ran: list[str] = []

    @app.task
    async def send(to: str) -> str:
        ran.append(to)
        return to

    return app, ran


async def test_an_altered_job_is_dead_lettered_unrun_and_a_signed_one_completes(broker_url: str) -> None:
    app, ran = signed_app(broker_url, NEW)
    client = app.async_client()
    job, body = client.build(JobSpec("send", {"to": "alice@example.com"}))
    altered = body.replace(b"alice", b"mallory")
    assert altered != body
    victim = Job(id=job.id, name=job.name, payload={"to": "mallory@example.com"}, created_at=job.created_at)
    await client.broker.enqueue([(victim, altered)])
    async with running_worker(app):
        failed = await client.wait(job.id, 10)
        assert await client.submit_and_wait("send", {"to": "bob@example.com"}, timeout=10) == "bob@example.com"
    assert failed.status is JobStatus.FAILED and failed.reason == "signature_invalid" and failed.attempts == 1
    assert failed.error is not None and "matches none of the signing keys" in failed.error
    assert ran == ["bob@example.com"]  # the altered job never reached its handler
    await client.close()


async def test_an_unsigned_job_is_refused_unless_signing_is_optional(broker_url: str) -> None:
    strict, ran = signed_app(broker_url, NEW)
    unsigned_client = Bananas(settings=make_settings(broker_url)).async_client()  # no keys: signs nothing
    job_id = await unsigned_client.submit("send", {"to": "carol@example.com"})
    async with running_worker(strict):
        refused = await unsigned_client.wait(job_id, 10)
    assert refused.status is JobStatus.FAILED and refused.reason == "signature_invalid" and ran == []
    assert refused.error == "the job is not signed, and this worker requires signed jobs"
    lenient, ran = signed_app(broker_url, NEW, required=False)
    async with running_worker(lenient):
        assert await unsigned_client.submit_and_wait("send", {"to": "dan@example.com"}, timeout=10) == "dan@example.com"
    assert ran == ["dan@example.com"]
    await unsigned_client.close()


async def test_rotation_a_job_signed_with_the_old_key_runs_where_both_verify(broker_url: str) -> None:
    worker_app, ran = signed_app(broker_url, NEW, OLD)
    old_client, _ = signed_app(broker_url, OLD)
    client = old_client.async_client()
    async with running_worker(worker_app):
        assert await client.submit_and_wait("send", {"to": "erin@example.com"}, timeout=10) == "erin@example.com"
    assert ran == ["erin@example.com"]
    _, body = client.build(JobSpec("send", {"to": "x"}))
    assert Signer([OLD]).check(body) is None and Signer([NEW]).check(body) is not None  # the old key signed
    await client.close()
