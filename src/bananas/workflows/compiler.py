"""Turn a canvas into the nodes of a workflow: ids, parents, inputs, in topological order.

How results flow (docs/WORKFLOWS.md):

- a chain step receives the previous step's result in its first parameter its signature
  leaves unset (the input's ``param`` is ``""`` until the builder names it from the
  task's parameters); a group passed on gives the list of its members' results;
- a chord's callback receives the list of its group's results, in the group's order;
- a DAG node receives exactly the references (``node.result[...]``) its payload names.

A source is a node id (its result), ``{"node": id, "path": [...]}`` (an item of it), or a
list of sources (a group's results). Nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bananas.errors import WorkflowError
from bananas.job import NodeInput
from bananas.workflows.canvas import DAG, Canvas, Chain, Chord, Group, ResultRef, Signature

#: The parameter a chain step or chord callback gets its input in: the first one unset.
FIRST_UNSET = ""
#: Most nodes one workflow may have.
MAX_NODES = 100_000


@dataclass
class PlannedNode:
    """One node to store: its signature, the nodes it waits for and where its inputs come from."""

    id: str
    signature: Signature
    parents: list[str]
    inputs: list[NodeInput] = field(default_factory=list)
    allow_failure: bool = False
    children: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """A workflow's nodes in topological order and what its result is made of (a source;
    ``None`` for a DAG: the mapping of every node id to its result)."""

    kind: str
    nodes: list[PlannedNode]
    output: Any


def plan(canvas: Canvas) -> Plan:
    """The nodes of ``canvas``.

    Raises:
        WorkflowError: a cycle, an unknown or duplicate node, an empty workflow.
    """
    if isinstance(canvas, DAG):
        nodes = _dag_nodes(canvas)
        return Plan("dag", _ordered(nodes), None)
    if not isinstance(canvas, Signature | Chain | Group | Chord):
        raise WorkflowError(f"cannot submit a {type(canvas).__name__} as a workflow")
    out: list[PlannedNode] = []
    _, output = _flow(canvas, None, out)
    if not out:
        raise WorkflowError("the workflow has no task to run")
    kind = type(canvas).__name__.lower()
    return Plan(kind, _ordered(out), output)


_Incoming = tuple[list[str], Any] | None  # the parents a step waits for and its input source


def _flow(c: Canvas, incoming: _Incoming, out: list[PlannedNode]) -> tuple[list[str], Any]:
    """Append the nodes of ``c``, fed by ``incoming``; return its last nodes and output."""
    if isinstance(c, Signature):
        node_id = str(len(out))
        if len(out) >= MAX_NODES:
            raise WorkflowError(f"a workflow has at most {MAX_NODES} nodes")
        _no_refs(c, node_id)
        parents, inputs = (
            ([], []) if incoming is None else (list(incoming[0]), [NodeInput(param=FIRST_UNSET, source=incoming[1])])
        )
        out.append(PlannedNode(node_id, c, parents, inputs))
        return [node_id], node_id
    if isinstance(c, Chain):
        current = incoming
        for step in c.steps:
            current = _flow(step, current, out)
        assert current is not None
        return current
    if isinstance(c, Group):
        ends: list[str] = []
        outputs: list[Any] = []
        for member in c.members:
            last, output = _flow(member, incoming, out)
            ends += last
            outputs.append(output)
        return ends, outputs
    if isinstance(c, Chord):
        return _flow(c.body, _flow(c.header, incoming, out), out)
    raise WorkflowError("a DAG cannot be nested in a chain, group or chord; submit it on its own")


def _no_refs(sig: Signature, node_id: str) -> None:
    for value in sig.payload.values():
        if isinstance(value, ResultRef):
            raise WorkflowError("result references (node.result) work only between the nodes of a DAG", node_id)


def _dag_nodes(dag: DAG) -> list[PlannedNode]:
    if not dag.nodes:
        raise WorkflowError(f"the DAG {dag.name!r} has no node")
    if len(dag.nodes) > MAX_NODES:
        raise WorkflowError(f"a workflow has at most {MAX_NODES} nodes")
    out = []
    for node in dag.nodes.values():
        parents = list(dict.fromkeys(node.after))
        inputs = []
        for param, value in node.signature.payload.items():
            _deep_refs(value, node.id, param, top=True)
            if isinstance(value, ResultRef):
                if value.dag is not None and value.dag is not dag:
                    raise WorkflowError(f"parameter {param!r} refers to node {value.node!r} of another DAG", node.id)
                source: Any = value.node if not value.path else {"node": value.node, "path": list(value.path)}
                inputs.append(NodeInput(param=param, source=source))
                if value.node not in parents:
                    parents.append(value.node)
        for parent in parents:
            if parent == node.id:
                raise WorkflowError("a node cannot depend on itself", node.id)
            if parent not in dag.nodes:
                raise WorkflowError(f"unknown node {parent!r}", node.id)
        payload = {k: v for k, v in node.signature.payload.items() if not isinstance(v, ResultRef)}
        sig = Signature(node.signature.name, payload, node.signature.options)
        out.append(PlannedNode(node.id, sig, parents, inputs, node.allow_failure))
    return out


def _deep_refs(value: Any, node_id: str, param: str, top: bool = False) -> None:
    """Refuse a result reference below a parameter's top level (it would not be filled)."""
    if isinstance(value, ResultRef):
        if not top:
            raise WorkflowError(f"a result reference must be the whole value of a parameter (in {param!r})", node_id)
    elif isinstance(value, Mapping):
        for item in value.values():
            _deep_refs(item, node_id, param)
    elif isinstance(value, list | tuple):
        for item in value:
            _deep_refs(item, node_id, param)


def _ordered(nodes: list[PlannedNode]) -> list[PlannedNode]:
    """Kahn's topological sort (stable: FIFO by the order given); fills ``children``.

    Raises:
        WorkflowError: a cycle, naming a node on it.
    """
    by_id = {n.id: n for n in nodes}
    waiting = {n.id: len(n.parents) for n in nodes}
    for n in nodes:
        for parent in n.parents:
            by_id[parent].children.append(n.id)
    ready = deque(n.id for n in nodes if not n.parents)
    out: list[PlannedNode] = []
    while ready:
        node = by_id[ready.popleft()]
        out.append(node)
        for child in node.children:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(out) < len(nodes):
        stuck = next(n.id for n in nodes if waiting[n.id] > 0)
        raise WorkflowError("the DAG has a cycle through this node", stuck)
    return out
