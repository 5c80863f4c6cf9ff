"""Workflows in the broker: the records a client submits and reads back, and the store
protocol every broker implements (``Broker`` includes it).

A workflow is one record: its nodes, each with the encoded job it runs, its parents and
children. Roots are enqueued at submit; every other node's job is enqueued by the broker
in the same atomic step as the outcome of its last parent (the ack, a lease reclaimed as
``worker_lost``, a cancel), so nothing polls and a crash at any point loses no node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bananas import wire
from bananas.job import Job

FailurePolicy = Literal["fail_fast", "continue"]
FAILURE_POLICIES: tuple[str, ...] = ("fail_fast", "continue")
#: Node statuses: ``waiting`` for parents, ``enqueued`` (its job is pending, scheduled or
#: processing: see the job), then one of the terminal ones.
NODE_TERMINAL = frozenset({"completed", "failed", "skipped", "cancelled"})
#: Workflow states: ``running``, then one of these.
WORKFLOW_TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: How long a workflow's record is kept after it was submitted or finished.
WORKFLOW_TTL_S = 7 * 86400.0


@dataclass
class NodeRecord:
    """One node: what is stored at submit, and (read back) its status, outcome and job."""

    id: str
    job_id: str
    name: str
    routing_key: str
    priority: int
    parents: list[str]
    children: list[str]
    body: bytes
    allow_failure: bool = False
    delay_s: float = 0.0  # from the moment the node becomes ready
    status: str = "waiting"
    job: Job | None = None  # read back: the node's job, while its record lasts
    #: "" (the workflow's rules), or a callback's condition on its one parent's outcome:
    #: ``success``, ``failure`` or ``always`` (``client.submit(on_success=...)``).
    when: str = ""

    @property
    def state(self) -> str:
        """The node's status; while its job is enqueued, the job's (``pending``,
        ``scheduled``, ``processing``)."""
        if self.status != "enqueued":
            return self.status
        return self.job.status.value if self.job is not None else "pending"


@dataclass
class WorkflowRecord:
    """A workflow: ``kind`` is ``chain``, ``group``, ``chord``, ``signature`` or ``dag``;
    ``output`` the JSON of its result's source (``bananas.workflows.compiler``)."""

    id: str
    name: str
    kind: str
    policy: str
    output: bytes
    created_at: float
    nodes: list[NodeRecord]
    state: str = "running"
    finished_at: float | None = None

    def node(self, node_id: str) -> NodeRecord | None:
        """The node with this id, if any."""
        return next((n for n in self.nodes if n.id == node_id), None)

    def counts(self) -> dict[str, int]:
        """How many nodes have each state (``NodeRecord.state``)."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.state] = out.get(n.state, 0) + 1
        return out


@dataclass
class WorkflowSummary:
    """A workflow as ``list_workflows`` shows it."""

    id: str
    name: str
    kind: str
    state: str
    created_at: float
    finished_at: float | None
    total: int
    counts: dict[str, int] = field(default_factory=dict)


#: How a callback's condition is stored: a mark after its id in its parent's children.
WHEN_MARKS = {"success": "+", "failure": "!", "always": "*"}
_MARK_WHEN = {mark: when for when, mark in WHEN_MARKS.items()}


def marked_children(record: WorkflowRecord) -> dict[str, list[str]]:
    """Every node's children as brokers store them: a callback's id carries its mark."""
    marks = {n.id: WHEN_MARKS.get(n.when, "") for n in record.nodes}
    return {n.id: [child + marks[child] for child in n.children] for n in record.nodes}


def edge(entry: str) -> tuple[str, str]:
    """A stored child entry's node id and mark ('' for an ordinary child)."""
    if entry and entry[-1] in _MARK_WHEN:
        return entry[:-1], entry[-1]
    return entry, ""


def edge_runs(mark: str, completed: bool, allow_failure: bool) -> bool:
    """Whether a child (by its mark) may run after its parent ended: an ordinary child
    when the parent completed or may fail; a callback when its condition holds."""
    if mark == "":
        return completed or allow_failure
    return mark == "*" or completed == (mark == "+")


def unmark(nodes: Sequence[NodeRecord]) -> None:
    """Read back: strip the marks from every node's children and set each callback's ``when``."""
    by_id = {n.id: n for n in nodes}
    for n in nodes:
        plain = []
        for entry in n.children:
            child, mark = edge(entry)
            plain.append(child)
            if mark and child in by_id:
                by_id[child].when = _MARK_WHEN[mark]
        n.children = plain


def error_object(job_id: str, error: str, reason: str) -> bytes:
    """What a node whose parent failed (``allow_failure``) receives in place of a result."""
    return wire.encode({"error": error, "reason": reason, "job_id": job_id})


class WorkflowStore(Protocol):
    """The workflow half of a broker (see the module docstring)."""

    async def submit_workflow(self, record: WorkflowRecord) -> None:
        """Store the workflow and enqueue its roots, in one atomic step."""

    async def get_workflow(self, workflow_id: str, jobs: bool = True) -> WorkflowRecord | None:
        """The workflow with every node's status (and, with ``jobs``, its job record)."""

    async def workflow_results(self, workflow_id: str, node_ids: Sequence[str]) -> dict[str, bytes]:
        """The stored outcomes (encoded JSON: a result, or ``error_object`` for a failed
        node) of those nodes that have one."""

    async def wait_workflow(self, workflow_id: str, timeout_s: float) -> str | None:
        """Block (without polling) until the workflow is no longer running or the
        timeout; its state then, ``None`` when there is no such workflow."""

    async def cancel_workflow(self, workflow_id: str) -> str | None:
        """Cancel: nodes not started never run, running ones are asked to stop, the
        workflow ends ``cancelled``. Returns its state before, ``None`` if unknown."""

    async def retry_workflow(self, workflow_id: str) -> int:
        """Run the failed, cancelled and skipped nodes of a finished workflow again (the
        others keep their results). Returns how many nodes will run again."""

    async def list_workflows(self, limit: int = 100) -> list[WorkflowSummary]:
        """Workflows, newest first."""
