"""Build a workflow record from a canvas: plan it, name each input's parameter, check
each node's payload as far as it is known, and build every node's job (no I/O)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bananas import wire
from bananas.brokers.workflow import FAILURE_POLICIES, NodeRecord, WorkflowRecord
from bananas.errors import ConfigurationError, PayloadError, WorkflowError
from bananas.job import Job, NodeInput, WorkflowLink, new_id, to_seconds
from bananas.submission import JobBuilder, JobSpec
from bananas.workflows.canvas import DAG, Canvas, Signature
from bananas.workflows.compiler import FIRST_UNSET, PlannedNode, plan

#: ``submit``'s callback options and the condition each puts on the job's outcome.
CALLBACKS = {"on_success": "success", "on_failure": "failure", "on_complete": "always"}
#: The node id of the job that callbacks follow.
CALLBACK_PARENT = "job"


class WorkflowBuilder:
    """Turns canvases into ``WorkflowRecord``s with the jobs of a ``JobBuilder``."""

    def __init__(self, jobs: JobBuilder) -> None:
        self.jobs = jobs
        #: every job built so far (for ``JobBuilder.submitted`` once the record is stored).
        self.built: list[tuple[Job, bytes]] = []

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

    def callbacks(self, spec: JobSpec, callbacks: Mapping[str, Sequence[Signature]]) -> WorkflowRecord:
        """A job with follow-ups (``submit(on_success=..., on_failure=..., on_complete=...)``):
        a workflow of kind ``callbacks`` whose node ``job`` is the job and whose other nodes
        run by its outcome, enqueued in the same atomic step as it. Each receives the job's
        result (or its error object) in its first unset parameter.

        Raises:
            WorkflowError: an unknown option, a callback that is not a Signature, an
                unknown task or a payload that does not fit (naming the callback).
            PayloadError, ConfigurationError: the job itself is invalid.
        """
        workflow_id = new_id()
        job, body = self.jobs.build(spec, WorkflowLink(id=workflow_id, node=CALLBACK_PARENT))
        if self.jobs.unique_lock(spec, job) is not None:
            raise ConfigurationError("a job with callbacks cannot have a unique key (not supported yet)")
        self.built.append((job, body))
        delay_s = max(0.0, (job.scheduled_for or 0.0) - time.time())
        root = NodeRecord(CALLBACK_PARENT, job.id, job.name, job.routing_key, job.priority, [], [], body,
                          delay_s=delay_s)  # fmt: skip
        nodes = [root]
        for option, sigs in callbacks.items():
            if option not in CALLBACKS:
                raise WorkflowError(f"unknown callback option {option!r}: use one of {', '.join(CALLBACKS)}")
            for i, sig in enumerate(sigs):
                node_id = option if len(sigs) == 1 else f"{option}.{i}"
                if not isinstance(sig, Signature):
                    raise WorkflowError(f"a callback is a Signature (task.s(...)), got {type(sig).__name__}", node_id)
                planned = PlannedNode(
                    node_id, sig, [CALLBACK_PARENT], [NodeInput(param=FIRST_UNSET, source=CALLBACK_PARENT)]
                )
                node = self._node(workflow_id, planned)
                node.when = CALLBACKS[option]
                root.children.append(node_id)
                nodes.append(node)
        output = wire.encode(CALLBACK_PARENT)
        return WorkflowRecord(workflow_id, job.name, "callbacks", "continue", output, job.created_at, nodes)

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
            self.built.append((job, body))
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
        if unset is None and not params:
            raise WorkflowError("the task's parameters are unknown here (its worker published no payload schema): "
                                "none can be chosen to receive the previous result; declare the task in this "
                                "process or use a DAG, which names each input", node_id)  # fmt: skip
        if unset is None:
            raise WorkflowError("every parameter is set: none is left to receive the previous result", node_id)
        return NodeInput(param=unset, source=i.source)
