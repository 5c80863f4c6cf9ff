"""Workflows survive crashes: 200 diamond workflows and 100 jobs with callbacks while a
random worker process of 3 is SIGKILLed every 2 s and restarted by its supervisor. Every
workflow completes with the right result, every success callback runs and no failure
callback does, no node's handler completes twice except in a redelivery, nothing hangs
and nothing is left processing."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from bananas import DAG, Client, Signature
from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess
from tests.e2e.test_kill_under_load import children

WORKFLOWS = 200
CALLBACKS = 100
KILL_EVERY_S = 2.0


def diamond(n: int, rng: random.Random) -> DAG:
    dag = DAG(f"diamond-{n}")
    a = dag.add(Signature("source", {"n": n, "ms": rng.randint(50, 300)}), id="a")
    b = dag.add(Signature("left", {"x": a.result, "ms": rng.randint(50, 300)}), id="b")
    c = dag.add(Signature("right", {"x": a.result, "ms": rng.randint(50, 300)}), id="c")
    dag.add(Signature("join", {"a": b.result, "b": c.result, "ms": rng.randint(50, 300)}), id="d")
    return dag


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "sqlite"])
def test_diamonds_survive_random_sigkills(
    broker: str, request: pytest.FixtureRequest, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    url = request.getfixturevalue("redis_url") if broker == "redis" else f"sqlite:///{tmp_path}/bananas.db"
    ledger = tmp_path / "ledger.txt"
    sup = spawn_worker(url, "--processes", "3", "--concurrency", "4", app="tests.e2e.workflow_app:app",
                       env={"BANANAS_LEDGER": str(ledger)})  # fmt: skip
    wait_until(lambda: len(children(sup.pid)) == 3, 30, "3 worker processes")
    client = Client(url)
    wait_until(lambda: len(client.tasks()) >= 4, 30, "the tasks in the catalogue")
    rng = random.Random(12)
    handles = [client.submit_workflow(diamond(n, rng)) for n in range(WORKFLOWS)]
    followed = [
        client.submit("source", {"n": n, "ms": rng.randint(50, 300)}, on_success=Signature("left", {"ms": 50}),
                      on_failure=Signature("right", {"ms": 50}))
        for n in range(CALLBACKS)
    ]  # fmt: skip
    callbacks = [client.workflow(job.workflow.id) for i in followed if (job := client.get_job(i)) and job.workflow]

    kills, last_kill, deadline = 0, time.monotonic(), time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [w.state for w in client.list_workflows(WORKFLOWS + CALLBACKS)]
        if states.count("running") == 0:
            break
        if time.monotonic() - last_kill >= KILL_EVERY_S and (alive := children(sup.pid)):
            os.kill(rng.choice(alive), signal.SIGKILL)
            kills, last_kill = kills + 1, time.monotonic()
        time.sleep(0.1)
    results = [h.wait(timeout=max(1.0, deadline - time.monotonic())) for h in handles]  # none hangs
    assert results == [{"a": n, "b": 2 * n, "c": n + 1000, "d": 3 * n + 1000} for n in range(WORKFLOWS)]
    assert [h.wait(timeout=max(1.0, deadline - time.monotonic())) for h in callbacks] == list(range(CALLBACKS))
    assert [h.results()["on_success"] for h in callbacks] == [2 * n for n in range(CALLBACKS)]
    failure_callbacks = [n.status for h in callbacks for n in h.get(jobs=False).nodes if n.id == "on_failure"]
    assert failure_callbacks == ["skipped"] * CALLBACKS
    assert kills >= 3, f"only {kills} kills: the workflows finished too early to test anything"

    completions: dict[str, list[int]] = defaultdict(list)
    for line in ledger.read_text().splitlines():
        _, job_id, delivery, _pid = line.split()
        completions[job_id].append(int(delivery))
    node_jobs = {n.job_id for h in handles + callbacks for n in h.get(jobs=False).nodes if n.status == "completed"}
    assert set(completions) == node_jobs
    again = {job_id: d for job_id, d in completions.items() if len(d) > 1}
    for job_id, deliveries in again.items():
        assert sorted(deliveries) == sorted(set(deliveries)), f"{job_id} completed twice in one delivery"
        assert all(d >= 2 for d in sorted(deliveries)[1:]), f"{job_id} completed twice without a redelivery"
    stats = client.queue_stats()
    assert sum(s.processing + s.ready + s.scheduled + s.suspects for s in stats) == 0, stats
    print(f"{kills} kills, {len(again)} node handlers completed again in a redelivery")
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "sqlite"])
def test_a_node_lost_with_its_worker_fails_the_node_and_moves_the_workflow_on(
    broker: str, request: pytest.FixtureRequest, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    url = request.getfixturevalue("redis_url") if broker == "redis" else f"sqlite:///{tmp_path}/bananas.db"
    sup = spawn_worker(url, "--processes", "1", app="tests.e2e.workflow_app:app")
    client = Client(url)
    wait_until(lambda: len(client.tasks()) >= 6, 30, "the tasks in the catalogue")
    dag = DAG("poison")
    poison = dag.add(Signature("die", {}), id="die", allow_failure=True)
    dag.add(Signature("after", {"parent": poison.result}), id="after")
    result = client.submit_workflow(dag).wait(timeout=90)
    error = result["after"]
    assert error["reason"] == "worker_lost" and "delivered 3 times" in error["error"], error
    assert error["job_id"] == result["die"]["job_id"]
    assert sup.alive()
    client.close()
