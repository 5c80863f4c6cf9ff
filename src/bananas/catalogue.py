"""The task catalogue: what workers publish about the tasks they serve, so that a client
that does not import the handlers submits with their defaults and checks payloads.

A ``TaskInfo`` is one task's definition (routing key, priority, retries, timeout, retry
policy, the payload's and the result's JSON Schema, the docstring's first line) plus the
workers that serve it and when each was last seen. Workers write it to the broker at
start and every ``HEARTBEAT_S``; ``Catalogue`` is a client's cached copy.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from bananas.errors import PayloadError
from bananas.registry import TaskDefinition

#: How often a worker re-publishes its tasks (its entries are "last seen" that often).
HEARTBEAT_S = 30.0
#: A worker not seen for this long no longer counts as serving a task.
WORKER_TTL_S = 3 * HEARTBEAT_S
#: How long a client uses its copy of the catalogue before reading it again (in the background).
REFRESH_S = 30.0


class RetryInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A task's retry policy (``RetryPolicy``) as published."""

    base_s: float = 1.0
    max_s: float = 3600.0
    jitter: float = 0.2


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One task as the catalogue knows it. ``None`` means "not set on the task": the
    submit's option, else the worker's setting (``MAX_RETRIES``, ``JOB_TIMEOUT``), else the
    built-in default applies."""

    name: str
    routing_key: str = "default"
    priority: int | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    retry: RetryInfo = RetryInfo()
    payload_schema: dict[str, Any] = {}
    result_schema: dict[str, Any] = {}
    summary: str = ""
    #: worker id -> unix time it last published this task (filled in when read).
    workers: dict[str, float] = {}


def describe(task: TaskDefinition) -> TaskInfo:
    """The catalogue entry of a task declared in this process."""
    r = task.retry
    return TaskInfo(
        name=task.name, routing_key=task.routing_key, priority=task.priority, max_retries=task.max_retries,
        timeout_s=task.timeout_s, retry=RetryInfo(base_s=r.base_s, max_s=r.max_s, jitter=r.jitter),
        payload_schema=_schema(task.spec.struct), result_schema=_result_schema(task.fn), summary=task.summary,
    )  # fmt: skip


def encode(info: TaskInfo) -> bytes:
    """The definition as stored in the broker (JSON, without the workers)."""
    return msgspec.json.encode(msgspec.structs.replace(info, workers={}))


def decode(definition: bytes, workers: Mapping[str, float]) -> TaskInfo | None:
    """A stored definition with its workers; None when it cannot be read (a newer format)."""
    try:
        info = msgspec.json.decode(definition, type=TaskInfo)
    except msgspec.DecodeError:
        return None
    return msgspec.structs.replace(info, workers=dict(workers))


def _schema(tp: Any) -> dict[str, Any]:
    """``tp``'s JSON Schema; a hint it cannot express (``object``, a class of the user's)
    is published as any value, so that every parameter is still listed."""
    try:
        schema: dict[str, Any] = msgspec.json.schema(tp, schema_hook=_any_value)
    except (TypeError, ValueError, msgspec.EncodeError):  # e.g. a default that is not JSON: no schema
        return {}
    return schema


def _any_value(tp: Any) -> dict[str, Any]:
    return {"description": f"any value ({getattr(tp, '__qualname__', tp)})"}  # ({} reads as "no schema")


def _result_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        hint = typing.get_type_hints(fn).get("return", Any)
    except Exception:  # noqa: BLE001 - unreadable hints were already refused for the payload
        return {}
    if typing.get_origin(hint) in (typing.Coroutine, typing.Awaitable):
        hint = typing.get_args(hint)[-1]
    return {} if hint is Any else _schema(hint)


class PayloadCheck:
    """A payload check compiled from a published JSON Schema (once per schema)."""

    def __init__(self, task: str, schema: Mapping[str, Any]) -> None:
        # Imported here: only clients that check payloads need it, and a worker process
        # (which publishes schemas, never checks them) saves its memory.
        import fastjsonschema

        self.task = task
        self._invalid = fastjsonschema.JsonSchemaValueException
        self._validate = fastjsonschema.compile(dict(schema)) if schema else None

    def __call__(self, payload: dict[str, Any]) -> None:
        """Raises ``PayloadError`` naming the field that does not fit."""
        if self._validate is None:
            return
        try:
            self._validate(payload)
        except self._invalid as exc:
            path = [str(p) for p in (exc.path or [])[1:]]
            if exc.rule == "required" and isinstance(exc.value, dict):  # name the first missing field
                path += [str(f) for f in exc.rule_definition or () if f not in exc.value][:1]
            field = ".".join(path) or None
            message = exc.message.replace("data.", "", 1).replace("data ", "payload ", 1)
            raise PayloadError(
                f"payload does not fit task {self.task!r} (task catalogue): {message}", field=field
            ) from None


class Catalogue:
    """A client's copy of the catalogue: the entries and their compiled payload checks.

    ``replace`` swaps in a fresh read; lookups never touch the broker.
    """

    def __init__(self, entries: Sequence[TaskInfo] = (), read_at: float | None = None) -> None:
        self.entries: dict[str, TaskInfo] = {e.name: e for e in entries}
        self.read_at = read_at
        self._checks: dict[str, tuple[TaskInfo, PayloadCheck]] = {}

    def replace(self, entries: Sequence[TaskInfo], read_at: float) -> None:
        """Use a fresh read of the broker's catalogue."""
        self.entries = {e.name: e for e in entries}
        self.read_at = read_at

    def mark_read(self, now: float) -> None:
        """Keep the entries, as if read at ``now`` (a read that failed is not retried
        before ``REFRESH_S``)."""
        self.read_at = now

    def stale(self, now: float) -> bool:
        """Whether it was never read, or read more than ``REFRESH_S`` ago."""
        return self.read_at is None or now - self.read_at > REFRESH_S

    def get(self, name: str) -> TaskInfo | None:
        """The entry of a task, if some worker published it."""
        return self.entries.get(name)

    def check(self, info: TaskInfo, payload: dict[str, Any], filled_later: frozenset[str] = frozenset()) -> None:
        """Check ``payload`` against the entry's schema (compiled on first use); the
        ``filled_later`` parameters (a workflow node's inputs) may be missing.

        Raises:
            PayloadError: it does not fit.
        """
        if filled_later:
            PayloadCheck(info.name, leave_out(info.payload_schema, filled_later))(payload)
            return
        cached = self._checks.get(info.name)
        if cached is None or cached[0].payload_schema != info.payload_schema:
            cached = self._checks[info.name] = (info, PayloadCheck(info.name, info.payload_schema))
        cached[1](payload)


def _object_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object a payload schema describes (msgspec puts it behind a ``$ref``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = schema.get("$defs", {}).get(ref[len("#/$defs/") :])
        if isinstance(target, Mapping):
            return target
    return schema


def parameters(schema: Mapping[str, Any]) -> list[str]:
    """A published payload schema's parameters, in the handler's order."""
    return list(_object_schema(schema).get("properties", {}))


def leave_out(schema: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The schema with ``names`` no longer required."""
    copy: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(schema))
    target = _object_schema(copy)
    if isinstance(target, dict) and "required" in target:
        target["required"] = [r for r in target["required"] if r not in names]
    return copy
