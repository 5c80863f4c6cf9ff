"""The Redis broker's workflows: ``bananas:wf:{<id>}:*`` (one cluster slot per workflow)
and the ``bananas:workflows`` index; the scripts are ``wf_*.lua`` and the workflow block
of ``_lib.lua``, which ``ack.lua``, ``cancel.lua`` and lease reclaims call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from bananas.brokers.redis.guard import guard
from bananas.brokers.redis.layout import PREFIX, job_from_hash, ms, prefix
from bananas.brokers.redis.store import MAX_BLOCK_S, RedisStore
from bananas.brokers.workflow import (
    WORKFLOW_TTL_S,
    NodeRecord,
    WorkflowRecord,
    WorkflowSummary,
    marked_children,
    unmark,
)

#: Index of every workflow: sorted set, score = created_at (unix ms).
WORKFLOWS = PREFIX + "workflows"
#: Most results one read asks for per command.
CHUNK = 1000


def wf_key(workflow_id: str) -> str:
    """``bananas:wf:{<id>}:``, the prefix of one workflow's keys."""
    return f"{PREFIX}wf:{{{workflow_id}}}:"


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _spec(n: NodeRecord) -> str:
    return f"{n.job_id}|{n.routing_key}|{n.priority}|{ms(n.delay_s)}|{int(n.allow_failure)}|{n.name}"


class RedisWorkflows(RedisStore):
    """``RedisBroker``'s ``WorkflowStore``."""

    @guard("submit workflow")
    async def submit_workflow(self, record: WorkflowRecord) -> None:
        now = ms(time.time())
        args: list[Any] = [record.id, now, ms(WORKFLOW_TTL_S), record.name, record.kind, record.policy,
                           record.output, ms(record.created_at)]  # fmt: skip
        children = marked_children(record)
        for n in record.nodes:
            args += (n.id, _spec(n), n.body, ",".join(n.parents), ",".join(children[n.id]))
        await self._s["wf_submit"]([], args)

    @guard("get workflow")
    async def get_workflow(self, workflow_id: str, jobs: bool = True) -> WorkflowRecord | None:
        wk = wf_key(workflow_id)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(wk + "meta")
            pipe.lrange(wk + "nodes", 0, -1)
            for name in ("status", "spec", "parents", "children"):
                pipe.hgetall(wk + name)
            meta, order, status, spec, parents, children = await pipe.execute()
        if not meta:
            return None
        nodes = []
        for raw in order:
            job_id, rk, prio, delay, allow, name = _text(spec.get(raw)).split("|", 5)
            nodes.append(NodeRecord(
                _text(raw), job_id, name, rk, int(prio), [p for p in _text(parents.get(raw)).split(",") if p],
                [c for c in _text(children.get(raw)).split(",") if c], b"", allow == "1", int(delay) / 1000,
                _text(status.get(raw)),
            ))  # fmt: skip
        unmark(nodes)
        if jobs:
            await self._attach_jobs(nodes)
        finished = meta.get(b"finished_at")
        return WorkflowRecord(
            workflow_id, _text(meta.get(b"name")), _text(meta.get(b"kind")), _text(meta.get(b"policy")),
            meta.get(b"output", b"null"), int(meta.get(b"created_at", b"0")) / 1000, nodes, _text(meta.get(b"state")),
            int(finished) / 1000 if finished else None,
        )  # fmt: skip

    async def _attach_jobs(self, nodes: list[NodeRecord]) -> None:
        started = [n for n in nodes if n.status != "waiting"]
        async with self._r.pipeline(transaction=False) as pipe:
            for n in started:
                pipe.hgetall(prefix(n.routing_key) + "job:" + n.job_id)
            found = await pipe.execute()
        for n, fields in zip(started, found, strict=True):
            if fields:
                n.job = job_from_hash(n.job_id, n.routing_key, cast("dict[bytes, bytes]", fields))

    @guard("read workflow results")
    async def workflow_results(self, workflow_id: str, node_ids: Sequence[str]) -> dict[str, bytes]:
        key = wf_key(workflow_id) + "results"
        ids = list(node_ids)
        parts = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        async with self._r.pipeline(transaction=False) as pipe:  # one round trip
            for part in parts:
                pipe.hmget(key, part)
            found = await pipe.execute()
        out: dict[str, bytes] = {}
        for part, values in zip(parts, found, strict=True):
            for node, value in zip(part, values, strict=True):
                if value is not None:
                    out[node] = value if isinstance(value, bytes) else value.encode()
        return out

    @guard("wait for workflow")
    async def wait_workflow(self, workflow_id: str, timeout_s: float) -> str | None:
        wk = wf_key(workflow_id)
        deadline = time.monotonic() + timeout_s
        while True:
            state = _text(await self._r.hget(wk + "meta", "state"))
            left = deadline - time.monotonic()
            if state != "running" or left <= 0:
                return state or None
            if await self._rb.blpop([wk + "notify"], timeout=max(0.01, min(left, MAX_BLOCK_S))):
                await self._r.lpush(wk + "notify", 1)  # for the next waiter of the same workflow

    @guard("cancel workflow")
    async def cancel_workflow(self, workflow_id: str) -> str | None:
        state = await self._s["wf_cancel"]([], [workflow_id, ms(time.time())])
        return _text(state) or None

    @guard("retry workflow")
    async def retry_workflow(self, workflow_id: str) -> int:
        return int(await self._s["wf_retry"]([], [workflow_id, ms(time.time())]))

    @guard("list workflows")
    async def list_workflows(self, limit: int = 100) -> list[WorkflowSummary]:
        await self._r.zremrangebyscore(WORKFLOWS, "-inf", ms(time.time() - 2 * WORKFLOW_TTL_S))
        ids = [_text(i) for i in cast("list[bytes]", await self._r.zrevrange(WORKFLOWS, 0, max(0, limit - 1)))]
        async with self._r.pipeline(transaction=False) as pipe:
            for workflow_id in ids:
                pipe.hmget(wf_key(workflow_id) + "meta", "name", "kind", "state", "created_at", "finished_at")
                pipe.hvals(wf_key(workflow_id) + "status")
            found = await pipe.execute()
        out, gone = [], []
        for i, workflow_id in enumerate(ids):
            name, kind, state, created, finished = cast("list[bytes | None]", found[2 * i])
            statuses = cast("list[bytes]", found[2 * i + 1])
            if state is None:
                gone.append(workflow_id)
                continue
            counts: dict[str, int] = {}
            for s in statuses:
                counts[_text(s)] = counts.get(_text(s), 0) + 1
            out.append(WorkflowSummary(workflow_id, _text(name), _text(kind), _text(state), int(created or 0) / 1000,
                                       int(finished) / 1000 if finished else None, len(statuses), counts))  # fmt: skip
        if gone:
            await self._r.zrem(WORKFLOWS, *gone)
        return out
