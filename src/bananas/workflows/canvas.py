"""The canvas: signatures, chains, groups, chords and DAGs, as plain data (no I/O).

``task.s(**payload)`` makes a ``Signature``; ``chain``, ``group`` and ``chord`` combine
them; a ``DAG`` names its nodes and wires them by result references
(``node.result["key"]``). ``bananas.workflows.compiler`` turns any of them into the
nodes the broker stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from bananas.durations import Duration
from bananas.errors import WorkflowError
from bananas.job import Priority

#: Node ids: the routing-key alphabet, 1 to 100 characters.
NODE_ID_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,100}$")


class NodeOptions(TypedDict, total=False):
    """What ``Signature.set`` accepts: the submit options a node's job takes."""

    priority: str | int | Priority | None
    routing_key: str | None
    max_retries: int | None
    timeout: Duration | None
    delay: Duration | None
    description: str


@dataclass(frozen=True)
class ResultRef:
    """The result of a DAG node (or an item of it, by ``[]``), used as a payload value."""

    node: str
    path: tuple[str | int, ...] = ()
    dag: DAG | None = field(default=None, compare=False, repr=False)

    def __getitem__(self, key: str | int) -> ResultRef:
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise WorkflowError(f"a result reference takes a str or int item, not {key!r}", self.node)
        return ResultRef(self.node, (*self.path, key), self.dag)


@dataclass(frozen=True)
class Signature:
    """One task call to make later: its name, payload and job options."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def set(self, **options: Unpack[NodeOptions]) -> Signature:
        """A copy with these job options (``priority``, ``routing_key``, ``max_retries``,
        ``timeout``, ``delay``, ``description``) added."""
        unknown = sorted(set(options) - set(NodeOptions.__annotations__))
        if unknown:
            raise WorkflowError(f"unknown signature option(s) for {self.name!r}: {', '.join(unknown)}")
        return Signature(self.name, self.payload, {**self.options, **options})

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass(frozen=True)
class Chain:
    """Steps run one after another; each receives the previous one's result."""

    steps: tuple[Canvas, ...]

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass(frozen=True)
class Group:
    """Members run in parallel; the group's result is the list of theirs, in order."""

    members: tuple[Canvas, ...]

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass(frozen=True)
class Chord:
    """A group, then a callback that receives the list of the group's results."""

    header: Group
    body: Canvas

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass
class DagNode:
    """A node added to a ``DAG``: its id, signature, parents and whether its dependents
    run when it fails (receiving its error in place of its result)."""

    id: str
    signature: Signature
    after: tuple[str, ...]
    allow_failure: bool
    dag: DAG = field(repr=False)

    @property
    def result(self) -> ResultRef:
        """A reference to this node's result, for another node's payload."""
        return ResultRef(self.id, (), self.dag)


class DAG:
    """A graph of named nodes. Dependencies come from ``after=`` and from result
    references in a node's payload."""

    def __init__(self, name: str = "dag") -> None:
        self.name = name
        self.nodes: dict[str, DagNode] = {}

    def add(
        self,
        signature: Signature,
        *,
        id: str | None = None,
        after: Iterable[DagNode | str] = (),
        allow_failure: bool = False,
    ) -> DagNode:
        """Add a node and return it.

        Raises:
            WorkflowError: a duplicate or illegal id, or not a signature.
        """
        if not isinstance(signature, Signature):
            raise WorkflowError(f"a DAG node is a signature (task.s(...)), not {type(signature).__name__}", id)
        node_id = check_node_id(id if id is not None else f"{signature.name}-{len(self.nodes)}")
        if node_id in self.nodes:
            raise WorkflowError("duplicate node id", node_id)
        parents = tuple(a.id if isinstance(a, DagNode) else str(a) for a in after)
        node = DagNode(node_id, signature, parents, allow_failure, self)
        self.nodes[node_id] = node
        return node


Canvas = Signature | Chain | Group | Chord | DAG


def check_node_id(node_id: str) -> str:
    """Return the id if legal.

    Raises:
        WorkflowError: empty, too long or with illegal characters.
    """
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise WorkflowError(f"illegal node id {node_id!r}: use 1-100 characters from A-Z a-z 0-9 _ - . :")
    return node_id


def chain(*steps: Canvas) -> Chain:
    """Run ``steps`` one after another; nested chains are flattened."""
    flat: list[Canvas] = []
    for step in steps:
        flat.extend(step.steps if isinstance(step, Chain) else (step,))
    if not flat:
        raise WorkflowError("a chain needs at least one step")
    return Chain(tuple(_canvas(s) for s in flat))


def group(*members: Canvas | Iterable[Canvas]) -> Group:
    """Run members in parallel: ``group(a, b)`` or ``group(sig for x in xs)``."""
    flat: list[Canvas] = []
    for member in members:
        if isinstance(member, Signature | Chain | Group | Chord | DAG):
            flat.append(member)
        else:
            flat.extend(member)
    return Group(tuple(_canvas(m) for m in flat))


def chord(header: Group | Iterable[Canvas], body: Canvas) -> Chord:
    """Run ``header``'s members in parallel, then ``body`` with the list of their results."""
    return Chord(header if isinstance(header, Group) else group(header), _canvas(body))


def _canvas(value: object) -> Canvas:
    if isinstance(value, DAG):
        raise WorkflowError("a DAG cannot be nested in a chain, group or chord; submit it on its own")
    if not isinstance(value, Signature | Chain | Group | Chord):
        raise WorkflowError(f"a workflow step is a signature, chain, group or chord, not {type(value).__name__}")
    return value


def task_names(canvas: Canvas) -> set[str]:
    """The task names a canvas calls."""
    if isinstance(canvas, Signature):
        return {canvas.name}
    if isinstance(canvas, DAG):
        return {n.signature.name for n in canvas.nodes.values()}
    parts: tuple[Canvas, ...] = (
        canvas.steps if isinstance(canvas, Chain) else canvas.members if isinstance(canvas, Group)
        else (canvas.header, canvas.body)
    )  # fmt: skip
    return set().union(*(task_names(p) for p in parts)) if parts else set()
