"""Handles on submitted workflows: status, progress, wait, results, cancel, retry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bananas import wire
from bananas.brokers.workflow import NODE_TERMINAL, WorkflowRecord, WorkflowStore
from bananas.durations import Duration
from bananas.errors import ResultTimeout, WorkflowFailed, WorkflowNotFound
from bananas.job import to_seconds
from bananas.sources import resolve, source_nodes


@dataclass(frozen=True)
class WorkflowProgress:
    """How far a workflow is: its state, how many of its nodes ended, and per state."""

    state: str
    done: int
    total: int
    counts: dict[str, int]

    @property
    def fraction(self) -> float:
        """``done / total`` (0..1)."""
        return self.done / self.total if self.total else 1.0


class AsyncWorkflowHandle:
    """A submitted workflow, for asyncio code (``AsyncClient.submit_workflow``)."""

    def __init__(self, store: WorkflowStore, workflow_id: str) -> None:
        self.store = store
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"<workflow {self.id}>"

    async def get(self, jobs: bool = True) -> WorkflowRecord:
        """The record: every node's status, job id and (with ``jobs``) job record.

        Raises:
            WorkflowNotFound: no such workflow (unknown, or its record expired).
        """
        record = await self.store.get_workflow(self.id, jobs)
        if record is None:
            raise WorkflowNotFound(f"no workflow {self.id!r} (unknown, or its record expired)")
        return record

    async def status(self) -> str:
        """``running``, ``completed``, ``failed`` or ``cancelled``."""
        return (await self.get(jobs=False)).state

    async def progress(self) -> WorkflowProgress:
        """The state and the count of nodes per state."""
        record = await self.get()
        counts = record.counts()
        done = sum(v for k, v in counts.items() if k in NODE_TERMINAL)
        return WorkflowProgress(record.state, done, len(record.nodes), counts)

    async def wait(self, timeout: Duration = 60.0) -> Any:
        """Block (no polling) until the workflow ends; return its result: a chain's last
        result, a group's list, a chord's callback result, a DAG's mapping of node id to
        result (a failed node with ``allow_failure``: its error object).

        Raises:
            ResultTimeout: still running after ``timeout``.
            WorkflowFailed: it failed or was cancelled (``.workflow`` is the record).
            WorkflowNotFound: no such workflow.
        """
        timeout_s = to_seconds(timeout, "timeout") or 0.0
        state = await self.store.wait_workflow(self.id, timeout_s)
        if state is None:
            raise WorkflowNotFound(f"no workflow {self.id!r} (unknown, or its record expired)")
        if state == "running":
            raise ResultTimeout(f"workflow {self.id} still running after {timeout_s:g} s")
        record = await self.get()
        if state != "completed":
            raise WorkflowFailed(f"workflow {self.id} {state}: {_first_error(record)}".rstrip(": "), record)
        output = wire.decode(record.output)
        if isinstance(output, dict) and output.get("dag"):
            stored = await self.store.workflow_results(self.id, [n.id for n in record.nodes])
            return {n.id: wire.decode(stored[n.id]) for n in record.nodes if n.id in stored}
        stored = await self.store.workflow_results(self.id, sorted(set(source_nodes(output))))
        return resolve(output, stored)

    async def results(self) -> dict[str, Any]:
        """The result of every node that has one so far (a failed node: its error object)."""
        record = await self.get(jobs=False)
        stored = await self.store.workflow_results(self.id, [n.id for n in record.nodes])
        return {n.id: wire.decode(stored[n.id]) for n in record.nodes if n.id in stored}

    async def cancel(self) -> bool:
        """Cancel: nodes not started never run, running ones see ``ctx.cancelled``, the
        workflow ends ``cancelled``. False when it had already ended or is unknown."""
        return await self.store.cancel_workflow(self.id) == "running"

    async def retry(self) -> int:
        """Run the failed, cancelled and skipped nodes again, reusing the results of the
        completed ones. Returns how many nodes run again (0 while it is running)."""
        return await self.store.retry_workflow(self.id)


def _first_error(record: WorkflowRecord) -> str:
    for n in record.nodes:
        if n.status in ("failed", "cancelled") and not n.allow_failure:
            error = n.job.error if n.job is not None and n.job.error else n.status
            return f"node {n.id!r} ({n.name}) {error}"
    return ""


class WorkflowHandle:
    """A submitted workflow, blocking (``Client.submit_workflow``); the same methods as
    ``AsyncWorkflowHandle``."""

    def __init__(self, workflow_id: str, call: Callable[[str, str, tuple[Any, ...]], Any]) -> None:
        self.id = workflow_id
        self._call = call  # runs (workflow id, method name, args) on the client's loop

    def __repr__(self) -> str:
        return f"<workflow {self.id}>"

    def get(self, jobs: bool = True) -> WorkflowRecord:
        """See ``AsyncWorkflowHandle.get``."""
        record: WorkflowRecord = self._call(self.id, "get", (jobs,))
        return record

    def status(self) -> str:
        """See ``AsyncWorkflowHandle.status``."""
        return str(self._call(self.id, "status", ()))

    def progress(self) -> WorkflowProgress:
        """See ``AsyncWorkflowHandle.progress``."""
        progress: WorkflowProgress = self._call(self.id, "progress", ())
        return progress

    def wait(self, timeout: Duration = 60.0) -> Any:
        """See ``AsyncWorkflowHandle.wait``."""
        return self._call(self.id, "wait", (timeout,))

    def results(self) -> dict[str, Any]:
        """See ``AsyncWorkflowHandle.results``."""
        results: dict[str, Any] = self._call(self.id, "results", ())
        return results

    def cancel(self) -> bool:
        """See ``AsyncWorkflowHandle.cancel``."""
        return bool(self._call(self.id, "cancel", ()))

    def retry(self) -> int:
        """See ``AsyncWorkflowHandle.retry``."""
        return int(self._call(self.id, "retry", ()))
