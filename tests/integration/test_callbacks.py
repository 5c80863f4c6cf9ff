"""Callbacks on every broker: ``submit(on_success=, on_failure=, on_complete=)`` follow-ups
enqueued with the job's outcome, and ``@app.task(on_success=, on_failure=)`` hooks run by
the worker after the outcome is stored (docs/WORKFLOWS.md, "Callbacks")."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bananas import AsyncClient, Bananas, ConfigurationError, Job, JobStatus, PermanentError, Signature, WorkflowError
from bananas.brokers.workflow import WorkflowRecord
from bananas.testing import WorkerThread, running_worker
from tests.integration.test_workflows import MakeApp


class App:
    """Tasks a job and its callbacks are made of; ``seen`` records what each callback got."""

    def __init__(self, app: Bananas) -> None:
        self.app = app
        self.seen: dict[str, Any] = {}
        seen = self.seen

        @app.task
        def work(x: int, fail: bool = False) -> int:
            if fail:
                raise PermanentError(f"no good: {x}")
            return x * 2

        @app.task
        def note(tag: str, outcome: Any = None) -> str:
            seen[tag] = outcome
            if tag == "broken":
                raise PermanentError("the callback is broken")
            return tag

        self.work, self.note = work, note


@pytest.fixture
def t(make_app: MakeApp) -> Iterator[App]:
    app = App(make_app())
    yield app
    app.app.close()


async def settled(client: AsyncClient, job_id: str) -> WorkflowRecord:
    """The callbacks workflow of ``job_id``, once every node ended."""
    job = await client.get_job(job_id)
    assert job is not None and job.workflow is not None
    assert await client.broker.wait_workflow(job.workflow.id, 20) in ("completed", "failed", "cancelled")
    record = await client.get_workflow(job.workflow.id)
    assert record is not None
    return record


def states(record: WorkflowRecord) -> dict[str, str]:
    return {n.id: n.state for n in record.nodes}


async def test_on_success_gets_the_result_and_on_failure_is_skipped(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit(
            "work", {"x": 21}, on_success=t.note.s(tag="ok"), on_failure=t.note.s(tag="bad"),
            on_complete=[t.note.s(tag="done"), t.note.s(tag="done2")],
        )  # fmt: skip
        assert (await client.wait(job_id, timeout=20)).result == 42
        record = await settled(client, job_id)
    assert t.seen == {"ok": 42, "done": 42, "done2": 42}
    assert record.kind == "callbacks" and record.name == "work" and record.state == "completed"
    assert states(record) == {
        "job": "completed", "on_success": "completed", "on_failure": "skipped",
        "on_complete.0": "completed", "on_complete.1": "completed",
    }  # fmt: skip
    whens = {n.id: n.when for n in record.nodes}
    assert whens == {"job": "", "on_success": "success", "on_failure": "failure", "on_complete.0": "always",
                     "on_complete.1": "always"}  # fmt: skip
    assert record.nodes[0].job_id == job_id and record.nodes[0].children == [n.id for n in record.nodes[1:]]


async def test_on_failure_gets_the_error_object(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 1, "fail": True}, on_success=t.note.s(tag="ok"),
                                     on_failure=t.note.s(tag="bad"), on_complete=t.note.s(tag="done"))  # fmt: skip
        record = await settled(client, job_id)
        job = await client.get_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED
    error = {"error": "PermanentError: no good: 1", "reason": "permanent_error", "job_id": job_id}
    assert t.seen == {"bad": error, "done": error}
    assert record.state == "failed"  # the job failed; its failure callback ran
    assert states(record) == {"job": "failed", "on_success": "skipped", "on_failure": "completed",
                              "on_complete": "completed"}  # fmt: skip


async def test_retry_runs_a_failed_success_callback_and_never_the_failure_one(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 5}, on_success=t.note.s(tag="broken"),
                                     on_failure=t.note.s(tag="bad"))  # fmt: skip
        record = await settled(client, job_id)
        assert states(record) == {"job": "completed", "on_success": "failed", "on_failure": "skipped"}
        t.seen.clear()
        assert await client.workflow(record.id).retry() == 1
        again = await settled(client, job_id)
    assert t.seen == {"broken": 10}  # only the success callback ran again, with the stored result
    assert states(again) == {"job": "completed", "on_success": "failed", "on_failure": "skipped"}


async def test_retry_after_the_job_failed_reruns_the_failed_callback_not_the_job(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 7, "fail": True}, on_success=t.note.s(tag="ok"),
                                     on_failure=t.note.s(tag="broken"))  # fmt: skip
        record = await settled(client, job_id)
        assert states(record) == {"job": "failed", "on_success": "skipped", "on_failure": "failed"}
        t.seen.clear()
        assert await client.workflow(record.id).retry() == 1
        again = await settled(client, job_id)
        job = await client.get_job(job_id)
    assert t.seen == {"broken": {"error": "PermanentError: no good: 7", "reason": "permanent_error", "job_id": job_id}}
    assert job is not None and job.attempts == 1  # the job kept its outcome: it did not run again
    assert again.state == "failed" and states(again) == states(record)


async def test_cancelling_a_queued_job_runs_its_failure_callback(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 1}, delay=60, on_success=t.note.s(tag="ok"),
                                     on_failure=t.note.s(tag="bad"))  # fmt: skip
        assert await client.cancel(job_id)
        record = await settled(client, job_id)
    assert t.seen == {"bad": {"error": "cancelled", "reason": "cancelled", "job_id": job_id}}
    assert states(record) == {"job": "cancelled", "on_success": "skipped", "on_failure": "completed"}


async def test_cancelling_the_workflow_of_a_job_with_callbacks_cancels_them(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 1}, delay=60, on_failure=t.note.s(tag="bad"))
        job = await client.get_job(job_id)
        assert job is not None and job.workflow is not None
        assert await client.workflow(job.workflow.id).cancel()
        record = await settled(client, job_id)
    assert t.seen == {} and record.state == "cancelled"
    assert states(record) == {"job": "cancelled", "on_failure": "cancelled"}


async def test_a_delayed_job_with_callbacks_waits_its_delay(t: App) -> None:
    async with t.app.async_client() as client, running_worker(t.app, concurrency=2):
        job_id = await client.submit("work", {"x": 3}, delay=0.3, on_success=t.note.s(tag="ok"))
        job = await client.get_job(job_id)
        assert job is not None and job.status is JobStatus.SCHEDULED
        record = await settled(client, job_id)
    assert t.seen == {"ok": 6} and record.state == "completed"


async def test_callbacks_are_checked_before_anything_is_stored(t: App) -> None:
    async with t.app.async_client() as client:
        await refused(client, t)


async def refused(client: AsyncClient, t: App) -> None:
    with pytest.raises(WorkflowError, match="unknown task 'nope'") as unknown:
        await client.submit("work", {"x": 1}, on_success=Signature("nope", {}))
    assert unknown.value.node == "on_success"
    with pytest.raises(WorkflowError, match="a callback is a Signature") as wrong:
        await client.submit("work", {"x": 1}, on_failure=[t.note.s(tag="a"), "note"])  # type: ignore[list-item]
    assert wrong.value.node == "on_failure.1"
    with pytest.raises(WorkflowError, match="a callback is a Signature") as task:
        await client.submit("work", {"x": 1}, on_success=t.note)  # type: ignore[arg-type]
    assert task.value.node == "on_success"
    with pytest.raises(WorkflowError, match="none is left") as full:
        await client.submit("work", {"x": 1}, on_success=t.note.s(tag="a", outcome=1))
    assert full.value.node == "on_success"
    assert not any(s.ready_by_priority for s in await client.queue_stats())  # nothing was enqueued


async def test_an_empty_list_of_callbacks_is_a_plain_submit(t: App) -> None:
    async with t.app.async_client() as client:
        job = await client.get_job(await client.submit("work", {"x": 1}, on_success=[]))
    assert job is not None and job.workflow is None


def test_task_options_carry_callbacks(t: App) -> None:
    with WorkerThread(t.app, concurrency=2):
        assert t.work.options(on_success=t.note.s(tag="waited")).submit_and_wait(5) == 10
        job_id = t.work.options(on_complete=t.note.s(tag="later")).submit(6)
        job = t.app.client.get_job(job_id)
        assert job is not None and job.workflow is not None
        t.app.client.workflow(job.workflow.id).wait(timeout=20)
    assert t.seen["later"] == 12 and "waited" in t.seen  # (the wait returned with the job's outcome)


def test_sync_client_submits_callbacks(t: App) -> None:
    with WorkerThread(t.app, concurrency=2):
        client = t.app.client
        job_id = client.submit("work", {"x": 4}, on_success=t.note.s(tag="ok"))
        job = client.get_job(job_id)
        assert job is not None and job.workflow is not None
        assert client.workflow(job.workflow.id).wait(timeout=20) == 8  # the job's result
    assert t.seen == {"ok": 8}


class Hooks:
    """A task with outcome hooks; each records what it got and the job's stored status
    when it ran (the hooks run after the outcome is stored)."""

    def __init__(self, app: Bananas, *, broken: bool = False) -> None:
        self.app = app
        self.calls: list[tuple[str, str, Any, str]] = []
        self.done = threading.Event()
        calls, done, client = self.calls, self.done, app.client

        def succeeded(job: Job, result: Any) -> None:  # a plain hook runs on a thread
            stored = client.get_job(job.id)
            calls.append(("success", job.id, result, stored.status.value if stored else "missing"))
            done.set()
            if broken:
                raise RuntimeError("hook exploded")

        async def failed(job: Job, error: dict[str, str]) -> None:  # an async hook on the loop
            async with app.async_client() as aclient:
                stored = await aclient.get_job(job.id)
            calls.append(("failure", job.id, error, stored.status.value if stored else "missing"))
            done.set()
            if broken:
                raise RuntimeError("async hook exploded")

        @app.task(on_success=succeeded, on_failure=failed, max_retries=1)
        def hooked(x: int) -> int:
            if x < 0:
                raise ValueError("negative")
            return x + 1

        self.hooked = hooked


@pytest.fixture
def h(make_app: MakeApp) -> Iterator[Hooks]:
    hooks = Hooks(make_app())
    yield hooks
    hooks.app.close()


@pytest.fixture
def broken(make_app: MakeApp) -> Iterator[Hooks]:
    hooks = Hooks(make_app(), broken=True)
    yield hooks
    hooks.app.close()


def test_task_hooks_run_after_the_outcome_is_stored(h: Hooks) -> None:
    client = h.app.client
    with WorkerThread(h.app, concurrency=2):
        ok = client.submit("hooked", {"x": 1})
        assert client.wait(ok, timeout=20).result == 2
        assert h.done.wait(20)
        h.done.clear()
        bad = client.submit("hooked", {"x": -1})
        assert h.done.wait(20)
    assert h.calls[0] == ("success", ok, 2, "completed")
    kind, job_id, error, status = h.calls[1]
    assert (kind, job_id, status) == ("failure", bad, "failed")
    assert error["job_id"] == bad and error["error"].startswith("ValueError: negative") and error["reason"]
    assert len(h.calls) == 2  # the retry of the failing job did not call the failure hook


def test_a_failing_hook_is_logged_and_changes_nothing(broken: Hooks, caplog: pytest.LogCaptureFixture) -> None:
    h = broken
    client = h.app.client
    with caplog.at_level(logging.ERROR, logger="bananas.worker.hooks"), WorkerThread(h.app, concurrency=1):
        ok = client.submit("hooked", {"x": 2})
        assert client.wait(ok, timeout=20).result == 3
        assert h.done.wait(20)
        h.done.clear()
        bad = client.submit("hooked", {"x": -2})
        assert h.done.wait(20)
        again = client.submit("hooked", {"x": 3})  # the worker goes on
        assert client.wait(again, timeout=20).result == 4
    job, failed = client.get_job(ok), client.get_job(bad)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert failed is not None and failed.status is JobStatus.FAILED
    logged = {getattr(r, "job_id", None): r.getMessage() for r in caplog.records if r.name == "bananas.worker.hooks"}
    assert "hook exploded" in logged[ok] and "async hook exploded" in logged[bad]


def test_a_hook_that_cannot_take_job_and_value_is_refused(make_app: MakeApp) -> None:
    app = make_app()

    async def one(job: Job) -> None: ...

    with pytest.raises(ConfigurationError, match="must take \\(job, value\\)"):

        @app.task(on_success=one)  # type: ignore[arg-type]
        def task(x: int) -> int:
            return x

    with pytest.raises(ConfigurationError, match="must be callable"):
        app.task(on_failure="log")(lambda: None)  # type: ignore[call-overload]
    app.close()
