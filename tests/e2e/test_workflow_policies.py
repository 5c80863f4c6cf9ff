"""The failure policies, retry() and cancel with a real ``bananas worker`` process, on
both brokers: what ran is read from a ledger the tasks write outside Bananas
(``tests/e2e/workflow_app.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bananas import DAG, Client, Signature, WorkflowFailed, chain
from bananas.testing import wait_until
from tests.e2e.conftest import WorkerProcess


class Setup:
    def __init__(self, client: Client, ledger: Path, gate: Path) -> None:
        self.client, self.ledger, self.gate = client, ledger, gate

    def lines(self) -> list[str]:
        return self.ledger.read_text().splitlines() if self.ledger.exists() else []


@pytest.fixture(params=["redis", "sqlite"])
def setup(
    request: pytest.FixtureRequest, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> Iterator[Setup]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else f"sqlite:///{tmp_path}/bananas.db"
    ledger = tmp_path / "ledger.txt"
    spawn_worker(url, "--concurrency", "4", app="tests.e2e.workflow_app:app", env={"BANANAS_LEDGER": str(ledger)})
    client = Client(url)
    wait_until(lambda: {"mark", "gated", "hold"} <= {t.name for t in client.tasks()}, 30, "the tasks in the catalogue")
    gate = tmp_path / "gate"
    gate.touch()
    yield Setup(client, ledger, gate)
    client.close()


def test_fail_fast_cancels_what_did_not_start_and_retry_reruns_only_that(setup: Setup) -> None:
    s, gate = setup, str(setup.gate)
    handle = s.client.submit_workflow(chain(Signature("mark", {"tag": "first"}), Signature("gated", {"gate": gate}),
                                            Signature("mark", {"tag": "after"})))  # fmt: skip
    with pytest.raises(WorkflowFailed, match="the gate is closed"):
        handle.wait(timeout=30)
    assert {n.id: n.status for n in handle.get().nodes} == {"0": "completed", "1": "failed", "2": "cancelled"}
    assert s.lines() == ["ran first", "gated refused"]  # the step after the failure never ran
    s.gate.unlink()
    assert handle.retry() == 2
    assert handle.wait(timeout=30) == "after"
    assert s.lines() == ["ran first", "gated refused", "ran gated", "ran after"]  # "first" ran once


def test_continue_skips_the_dependents_and_runs_the_other_branches(setup: Setup) -> None:
    s = setup
    dag = DAG("branches")
    broken = dag.add(Signature("gated", {"gate": str(s.gate)}), id="broken")
    dag.add(Signature("mark", {"tag": "below", "seen": broken.result}), id="below")
    other = dag.add(Signature("mark", {"tag": "other"}), id="other")
    dag.add(Signature("mark", {"tag": "next", "seen": other.result}), id="next")
    handle = s.client.submit_workflow(dag, on_failure="continue")
    with pytest.raises(WorkflowFailed):
        handle.wait(timeout=30)
    statuses = {n.id: n.status for n in handle.get().nodes}
    assert statuses == {"broken": "failed", "below": "skipped", "other": "completed", "next": "completed"}
    assert sorted(s.lines()) == ["gated refused", "ran next", "ran other"]


def test_cancel_stops_a_running_workflow(setup: Setup) -> None:
    s = setup
    handle = s.client.submit_workflow(chain(Signature("hold"), Signature("mark", {"tag": "never"})))
    wait_until(lambda: any(line.startswith("holding") for line in s.lines()), 30, "the first node to run")
    assert handle.cancel()
    with pytest.raises(WorkflowFailed, match="cancelled"):
        handle.wait(timeout=30)
    record = handle.get()
    assert record.state == "cancelled"
    assert record.nodes[1].status == "cancelled"
    hold_job = record.nodes[0].job_id
    wait_until(lambda: f"cancelled {hold_job}" in s.lines(), 30, "the running node to see ctx.cancelled")
    assert not any("never" in line for line in s.lines())
