"""Build a workflow record from a canvas: plan it, name each input's parameter, check
each node's payload as far as it is known, and build every node's job (no I/O)."""

from __future__ import annotations

import time
from typing import Any

from bananas import wire
from bananas.brokers.workflow import FAILURE_POLICIES, NodeRecord, WorkflowRecord
from bananas.errors import ConfigurationError, PayloadError, WorkflowError
from bananas.job import NodeInput, WorkflowLink, new_id, to_seconds
from bananas.submission import JobBuilder, JobSpec
from bananas.workflows.canvas import DAG, Canvas
from bananas.workflows.compiler import FIRST_UNSET, PlannedNode, plan


class WorkflowBuilder:
    """Turns canvases into ``WorkflowRecord``s with the jobs of a ``JobBuilder``."""

    def __init__(self, jobs: JobBuilder) -> None:
        self.jobs = jobs

    def build(self, canvas: Canvas, *, on_failure: str = "fail_fast", name: str | None = None) -> WorkflowRecord:
        """Validate the whole workflow before anything is stored.

        Raises:
            WorkflowError: a cycle, an unknown or duplicate node, an unknown task, a
                payload that does not fit its handler, an unknown failure policy.
        """
        if on_failure not in FAILURE_POLICIES:
            raise WorkflowError(f"unknown failure policy {on_failure!r}: use one of {', '.join(FAILURE_POLICIES)}")
        planned = plan(canvas)
        workflow_id = new_id()
        nodes = [self._node(workflow_id, n) for n in planned.nodes]
        if name is None:
            name = canvas.name if isinstance(canvas, DAG) else planned.kind
        output = wire.encode({"dag": True} if planned.output is None else planned.output)
        return WorkflowRecord(workflow_id, name, planned.kind, on_failure, output, time.time(), nodes)

    def _node(self, workflow_id: str, n: PlannedNode) -> NodeRecord:
        sig = n.signature
        params = self.jobs.parameters(sig.name)
        if params is None:
            raise WorkflowError(f"unknown task {sig.name!r} (not declared here, and no worker published it)", n.id)
        inputs = [self._named(i, params, sig.payload, n.id) for i in n.inputs]
        options: dict[str, Any] = dict(sig.options)
        delay = options.pop("delay", None)
        try:
            delay_s = to_seconds(delay, "delay") or 0.0
            if delay_s < 0:
                raise ConfigurationError(f"delay must be >= 0 seconds, got {delay_s:g}")
            spec = JobSpec(sig.name, sig.payload, **options)
            job, body = self.jobs.build(spec, WorkflowLink(id=workflow_id, node=n.id, inputs=inputs))
        except (PayloadError, ConfigurationError) as exc:
            raise WorkflowError(str(exc), n.id) from None
        return NodeRecord(n.id, job.id, job.name, job.routing_key, job.priority, n.parents, n.children, body,
                          n.allow_failure, delay_s)  # fmt: skip

    @staticmethod
    def _named(i: NodeInput, params: list[str], payload: Any, node_id: str) -> NodeInput:
        """Name the "first unset parameter" of a chain step or chord callback."""
        if i.param != FIRST_UNSET:
            return i
        unset = next((p for p in params if p not in payload), None)
        if unset is None:
            raise WorkflowError("every parameter is set: none is left to receive the previous result", node_id)
        return NodeInput(param=unset, source=i.source)
