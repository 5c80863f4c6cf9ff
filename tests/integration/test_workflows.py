"""Workflows on every broker: results flow through chains, groups, chords and DAGs; the
failure policies, allow_failure, retry and cancel behave as docs/WORKFLOWS.md says."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bananas import (
    DAG,
    Bananas,
    Client,
    Context,
    PermanentError,
    Signature,
    WorkflowError,
    WorkflowFailed,
    chain,
    chord,
    group,
)
from bananas.testing import running_worker
from tests.conftest import make_settings

MakeApp = Callable[..., Bananas]


class Tasks:
    """An app with the tasks these tests compose, and a record of what ran."""

    def __init__(self, app: Bananas) -> None:
        self.app = app
        self.ran: list[str] = []
        self.broken: set[str] = set()  # names of `step` calls that fail (PermanentError)
        self.release = threading.Event()  # lets `hold` return
        self.held = threading.Event()  # set once `hold` runs
        self.saw_cancel = threading.Event()
        ran, broken = self.ran, self.broken

        @app.task
        def fetch(url: str) -> dict[str, Any]:
            ran.append("fetch")
            return {"html": f"<p>{url}</p>", "length": len(url)}

        @app.task
        def parse(html: str) -> str:
            ran.append("parse")
            return html.upper()

        @app.task
        def stats(size: int) -> int:
            ran.append("stats")
            return size * 10

        @app.task
        def report(parsed: str, stats: int) -> str:
            ran.append("report")
            return f"{parsed} {stats}"

        @app.task
        def add(x: int, y: int = 1) -> int:
            ran.append(f"add:{x}+{y}")
            return x + y

        @app.task
        def total(values: list[int], bonus: int = 0) -> int:
            ran.append("total")
            return sum(values) + bonus

        @app.task
        def step(tag: str, seen: Any = None) -> dict[str, Any]:
            ran.append(tag)
            if tag in broken:
                raise PermanentError(f"{tag} is broken")
            return {"tag": tag, "seen": seen}

        @app.task
        async def hold(ctx: Context) -> str:
            self.held.set()
            try:
                while True:  # a cancel of the job cancels this task, with ctx.cancelled set first
                    await asyncio.sleep(0.01)
            finally:
                if ctx.cancelled:
                    self.saw_cancel.set()

        self.fetch, self.parse, self.stats, self.report = fetch, parse, stats, report
        self.add, self.total, self.step, self.hold = add, total, step, hold


@pytest.fixture
def tasks(make_app: MakeApp) -> Tasks:
    return Tasks(make_app())


def diamond(t: Tasks) -> DAG:
    dag = DAG("etl")
    a = dag.add(t.fetch.s(url="example.org"), id="fetch")
    b = dag.add(t.parse.s(html=a.result["html"]), id="parse")
    c = dag.add(t.stats.s(size=a.result["length"]), id="stats")
    dag.add(t.report.s(parsed=b.result, stats=c.result), id="report")
    return dag


async def test_diamond_dag_passes_results(tasks: Tasks) -> None:
    client = tasks.app.async_client()
    async with running_worker(tasks.app, concurrency=4):
        handle = await client.submit_workflow(diamond(tasks))
        result = await handle.wait(timeout=20)
        record = await handle.get()
    assert result == {
        "fetch": {"html": "<p>example.org</p>", "length": 11},
        "parse": "<P>EXAMPLE.ORG</P>",
        "stats": 110,
        "report": "<P>EXAMPLE.ORG</P> 110",
    }
    assert record.state == "completed" and record.kind == "dag" and record.name == "etl"
    assert record.nodes[0].id == "fetch" and record.nodes[-1].id == "report"
    last = record.node("report")
    assert last is not None and last.parents == ["parse", "stats"]
    for node in record.nodes:
        assert node.state == "completed" and node.job is not None
        assert node.job.workflow is not None and node.job.workflow.id == handle.id
        assert node.job.attempts == 1 and node.job.started_at is not None and node.job.finished_at is not None
    assert sorted(tasks.ran) == ["fetch", "parse", "report", "stats"]
    progress = await handle.progress()
    assert (progress.state, progress.done, progress.total, progress.fraction) == ("completed", 4, 4, 1.0)
    await client.close()


async def test_chain_group_and_chord_results(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=4):
        # a chain step gets the previous result in its first unset parameter
        assert await (await client.submit_workflow(chain(t.add.s(x=1), t.add.s(), t.add.s(y=10)))).wait(20) == 13
        assert await (await client.submit_workflow(t.add.s(x=1) | t.add.s(y=5))).wait(20) == 7
        # a group's result is the list of its members' results, in order
        assert await (await client.submit_workflow(group(t.add.s(x=i) for i in range(6)))).wait(20) == [
            1, 2, 3, 4, 5, 6
        ]  # fmt: skip
        # a chord's callback receives that list the same way
        members = group(t.add.s(x=i, y=i) for i in range(5))
        assert await (await client.submit_workflow(chord(members, t.total.s(bonus=100)))).wait(20) == 120
        # a group inside a chain: every member gets the previous result; the next step the list
        flow = chain(t.add.s(x=1), group(t.add.s(), t.add.s(y=100)), t.total.s())
        assert await (await client.submit_workflow(flow)).wait(20) == 3 + 102
        empty = chord(group(), t.total.s())
        assert await (await client.submit_workflow(empty)).wait(20) == 0
    await client.close()


async def test_invalid_workflows_are_refused_before_anything_is_stored(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()

    async def refused(canvas: Any, node: str | None, text: str, **options: Any) -> None:
        with pytest.raises(WorkflowError, match=text) as info:
            await client.submit_workflow(canvas, **options)
        assert info.value.node == node

    cyclic = DAG("cyclic")
    cyclic.add(t.step.s(tag="a"), id="a", after=["b"])
    cyclic.add(t.step.s(tag="b"), id="b", after=["a"])
    await refused(cyclic, "a", "cycle")
    unknown_ref = DAG()
    unknown_ref.add(t.step.s(tag="a"), id="a", after=["ghost"])
    await refused(unknown_ref, "a", "unknown node 'ghost'")
    other = DAG()
    stray = other.add(t.fetch.s(url="x"), id="f")
    mixed = DAG()
    mixed.add(t.parse.s(html=stray.result), id="p")
    await refused(mixed, "p", "another DAG")
    await refused(chain(t.add.s(x=1), t.step.s(tag="x", seen=1)), "1", "none is left")
    await refused(chain(t.add.s(x=1), t.add.s(x="not an int")), "1", "payload does not fit")
    await refused(chain(t.add.s(x=1), Signature("no.such.task", {})), "1", "unknown task 'no.such.task'")
    await refused(t.add.s(x=1), None, "unknown failure policy", on_failure="sometimes")
    deep = DAG()
    root = deep.add(t.fetch.s(url="x"), id="f")
    deep.add(t.step.s(tag="x", seen={"inner": root.result}), id="s")
    await refused(deep, "s", "whole value")
    dup = DAG()
    dup.add(t.add.s(x=1), id="same")
    with pytest.raises(WorkflowError, match="duplicate node id"):
        dup.add(t.add.s(x=2), id="same")
    with pytest.raises(WorkflowError, match="illegal node id"):
        dup.add(t.add.s(x=2), id="has space")
    with pytest.raises(WorkflowError, match="no node"):
        await client.submit_workflow(DAG("empty"))
    assert await client.list_workflows() == []
    assert all(s.ready == 0 for s in await client.queue_stats())
    await client.close()


def branches(t: Tasks, *, allow: bool = False) -> DAG:
    """root -> (bad -> after_bad, good -> after_good); with ``allow``, bad's failure is allowed."""
    dag = DAG("branches")
    root = dag.add(t.step.s(tag="root"), id="root")
    bad = dag.add(t.step.s(tag="bad"), id="bad", after=[root], allow_failure=allow)
    good = dag.add(t.step.s(tag="good"), id="good", after=[root])
    dag.add(t.step.s(tag="after_bad", seen=bad.result), id="after_bad")
    dag.add(t.step.s(tag="after_good", seen=good.result), id="after_good")
    return dag


async def test_fail_fast_cancels_what_has_not_started(tasks: Tasks) -> None:
    t = tasks
    t.broken.add("bad")
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=1):
        handle = await client.submit_workflow(branches(t))
        with pytest.raises(WorkflowFailed, match="node 'bad'") as info:
            await handle.wait(timeout=20)
    record = info.value.workflow
    states = {n.id: n.state for n in record.nodes}  # type: ignore[attr-defined]
    assert states["root"] == "completed" and states["bad"] == "failed" and states["after_bad"] == "cancelled"
    # one worker slot: "good" ran before or after "bad"; nothing started after the failure
    assert states["good"] in ("completed", "cancelled") and states["after_good"] == "cancelled"
    assert "after_bad" not in t.ran and "after_good" not in t.ran
    assert await handle.status() == "failed"
    await client.close()


async def test_continue_skips_the_dependents_of_a_failed_node(tasks: Tasks) -> None:
    t = tasks
    t.broken.add("bad")
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=2):
        handle = await client.submit_workflow(branches(t), on_failure="continue")
        with pytest.raises(WorkflowFailed):
            await handle.wait(timeout=20)
    record = await handle.get()
    assert {n.id: n.state for n in record.nodes} == {
        "root": "completed", "bad": "failed", "good": "completed", "after_bad": "skipped", "after_good": "completed",
    }  # fmt: skip
    results = await handle.results()
    assert results["after_good"] == {"tag": "after_good", "seen": {"tag": "good", "seen": None}}
    assert results["bad"]["reason"] == "permanent_error" and "bad is broken" in results["bad"]["error"]
    assert "after_bad" not in t.ran
    await client.close()


async def test_allow_failure_hands_the_error_to_the_dependents(tasks: Tasks) -> None:
    t = tasks
    t.broken.add("bad")
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=2):
        handle = await client.submit_workflow(branches(t, allow=True))
        result = await handle.wait(timeout=20)
    record = await handle.get()
    bad = record.node("bad")
    assert bad is not None and bad.state == "failed"
    seen = result["after_bad"]["seen"]
    assert seen == {"error": seen["error"], "reason": "permanent_error", "job_id": bad.job_id}
    assert "bad is broken" in seen["error"]
    assert result["after_good"]["seen"]["tag"] == "good"
    await client.close()


async def test_retry_runs_only_what_did_not_complete(tasks: Tasks) -> None:
    t = tasks
    t.broken.add("bad")
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=2):
        handle = await client.submit_workflow(branches(t), on_failure="continue")
        with pytest.raises(WorkflowFailed):
            await handle.wait(timeout=20)
        assert sorted(t.ran) == ["after_good", "bad", "good", "root"]
        t.broken.clear()
        t.ran.clear()
        assert await handle.retry() == 2  # bad (failed) and after_bad (skipped)
        result = await handle.wait(timeout=20)
        assert await handle.retry() == 0  # nothing left to run again
    assert sorted(t.ran) == ["after_bad", "bad"]
    assert result["after_bad"] == {"tag": "after_bad", "seen": {"tag": "bad", "seen": None}}
    assert result["root"] == {"tag": "root", "seen": None}
    record = await handle.get()
    assert all(n.state == "completed" for n in record.nodes)
    await client.close()


async def test_cancel_stops_a_running_workflow(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()
    async with running_worker(t.app, concurrency=2):
        handle = await client.submit_workflow(chain(t.hold.s(), t.step.s(tag="never")))
        assert await asyncio.to_thread(t.held.wait, 20)
        assert await handle.cancel() is True
        with pytest.raises(WorkflowFailed, match="cancelled"):
            await handle.wait(timeout=20)
        assert await asyncio.to_thread(t.saw_cancel.wait, 20)  # the running node saw ctx.cancelled
        assert await handle.cancel() is False
    record = await handle.get()
    assert record.state == "cancelled"
    assert record.nodes[1].state == "cancelled" and "never" not in t.ran
    assert record.nodes[0].state == "cancelled"  # its task was cancelled: the job ends cancelled
    await client.close()


async def test_node_options_and_delay(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()
    flow = chain(t.add.s(x=1).set(priority="high", routing_key="wf", max_retries=0), t.add.s().set(delay=0.2))
    async with running_worker(t.app, routing_keys=["wf", "default"]):
        handle = await client.submit_workflow(flow, name="with-options")
        assert await handle.wait(timeout=20) == 3
    record = await handle.get()
    first, second = record.nodes
    assert (first.routing_key, first.priority, second.delay_s) == ("wf", 90, 0.2)
    assert first.job is not None and first.job.max_retries == 0
    assert second.job is not None and second.job.started_at is not None and first.job.finished_at is not None
    assert second.job.started_at - first.job.finished_at >= 0.19
    assert [s.name for s in await client.list_workflows()] == ["with-options"]
    await client.close()


def test_the_blocking_client_and_handle(broker_url: str) -> None:
    app = Bananas(settings=make_settings(broker_url))

    @app.task
    def double(x: int) -> int:
        return 2 * x

    started = threading.Event()

    def work() -> None:
        async def run() -> None:
            async with running_worker(app):
                started.set()
                await asyncio.to_thread(done.wait, 30)

        asyncio.run(run())

    done = threading.Event()
    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert started.wait(20)
        with Client(app=app) as client:
            handle = client.submit_workflow(double.s(x=2) | double.s() | double.s())
            assert handle.wait(timeout=20) == 16
            assert handle.status() == "completed"
            assert handle.results() == {"0": 4, "1": 8, "2": 16}
            assert handle.progress().done == 3
            again = client.workflow(handle.id)
            assert again.get().nodes[2].state == "completed"
            found = client.get_workflow(handle.id)
            assert found is not None and found.id == handle.id
            assert client.get_workflow("01NOSUCHWORKFLOW000000000") is None
    finally:
        done.set()
        worker.join()


@pytest.mark.slow
async def test_a_chord_over_ten_thousand_members_completes_with_a_bounded_record(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()
    members = 10_000
    async with running_worker(t.app, concurrency=50):
        handle = await client.submit_workflow(chord(group(t.add.s(x=i) for i in range(members)), t.total.s()))
        assert await handle.wait(timeout=240) == sum(range(1, members + 1))
        record = await handle.get(jobs=False)
        results = await handle.results()
    assert len(record.nodes) == members + 1 and record.state == "completed"
    assert len(results) == members + 1 and results["0"] == 1 and results[str(members - 1)] == members
    # results are stored one per node and read on demand: no stored value holds them all
    largest = max(
        len(v) for v in (await client.broker.workflow_results(handle.id, [n.id for n in record.nodes])).values()
    )
    assert largest < 16
    await client.close()


async def test_cancelling_a_node_job_fails_the_workflow(tasks: Tasks) -> None:
    t = tasks
    client = t.app.async_client()
    dag = DAG("two-roots")
    dag.add(t.step.s(tag="later").set(delay=60), id="later")
    dag.add(t.step.s(tag="next"), id="next", after=["later"])
    handle = await client.submit_workflow(dag)
    later = (await handle.get()).node("later")
    assert later is not None and later.state == "scheduled"
    assert await client.cancel(later.job_id) is True
    assert await handle.status() == "failed"
    record = await handle.get()
    assert [n.state for n in record.nodes] == ["cancelled", "cancelled"]
    assert (await handle.results())["later"]["reason"] == "cancelled"
    await client.close()


async def test_a_dead_lettered_node_revived_from_the_dlq_runs_on_its_own(tasks: Tasks) -> None:
    t = tasks
    t.broken.add("bad")
    client = t.app.async_client()
    async with running_worker(t.app):
        handle = await client.submit_workflow(chain(t.step.s(tag="bad"), t.step.s(tag="next")))
        with pytest.raises(WorkflowFailed):
            await handle.wait(timeout=20)
        bad = (await handle.get()).nodes[0]
        t.broken.clear()
        assert await client.retry_dead([bad.job_id]) == 1
        done = await client.wait(bad.job_id, timeout=20)
    assert done.status.value == "completed"
    record = await handle.get()  # the workflow keeps its outcome: handle.retry() re-runs nodes
    assert record.state == "failed" and [n.state for n in record.nodes] == ["failed", "cancelled"]
    await client.close()
