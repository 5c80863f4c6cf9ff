"""The Redis key layout (docs/WIRE.md) and the codecs of the scripts' arguments and
replies: what ``RedisBroker`` sends and reads, without any I/O."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bananas import wire
from bananas.brokers.base import Delivery, Lease, Offer, Reclaim, ScheduleState, UniqueJobs
from bananas.errors import PayloadError
from bananas.job import Job, JobStatus

#: Prefix of every key Bananas writes.
PREFIX = "bananas:"
ROUTING_KEYS = PREFIX + "routing_keys"
LEADER = PREFIX + "scheduler:leader"
EPOCH = PREFIX + "scheduler:epoch"
SCHEDULES = PREFIX + "schedules"
#: Prefix of the task catalogue's keys (one hash tag: one cluster slot).
CATALOGUE = PREFIX + "{catalogue}:"


def prefix(rk: str) -> str:
    """``bananas:{rk}:``, the prefix of every key of one routing key (one cluster slot)."""
    return f"{PREFIX}{{{rk}}}:"


def ms(seconds: float) -> int:
    """Unix seconds as the integer milliseconds the scripts store."""
    return int(seconds * 1000)


def submit_calls(jobs: Sequence[tuple[Job, bytes]], watch: bool) -> list[tuple[list[str], list[Any]]]:
    """(keys, args) of one submit script call per routing key.

    Consecutive jobs that share priority, run time and name form a run, sent as
    ``n, priority, run_at, name`` and then ``id, body`` per job (see submit.lua).
    """
    runs: dict[str, list[list[Any]]] = {}  # routing key -> its runs, the open one last
    for job, body in jobs:
        run_at = ms(job.scheduled_for) if job.scheduled_for else 0
        rk_runs = runs.get(job.routing_key)
        if rk_runs is None:
            rk_runs = runs[job.routing_key] = []
        run = rk_runs[-1] if rk_runs else None
        if run is None or run[1] != job.priority or run[2] != run_at or run[3] != job.name:
            run = [0, job.priority, run_at, job.name]
            rk_runs.append(run)
        run += (job.id, body)
    now_ms = ms(time.time())
    calls = []
    for rk, rk_runs in runs.items():
        p = prefix(rk)
        args: list[Any] = [p, rk, now_ms, int(watch)]
        for run in rk_runs:
            run[0] = (len(run) - 4) // 2
            args += run
        calls.append(([p + "ready", p + "scheduled", p + "signal", ROUTING_KEYS, p + "idle", p + "leases"], args))
    return calls


def submit_unique_calls(jobs: UniqueJobs, watch: bool) -> tuple[list[str], list[tuple[list[str], list[Any]]]]:
    """The routing key of each call, and (keys, args) of one ``submit_unique`` call per
    routing key (see submit_unique.lua), jobs in the order given."""
    by_rk: dict[str, list[Any]] = {}
    now_ms = ms(time.time())
    for job, body, lock in jobs:
        args = by_rk.get(job.routing_key)
        if args is None:
            args = by_rk[job.routing_key] = [prefix(job.routing_key), job.routing_key, now_ms, int(watch)]
        run_at = ms(job.scheduled_for) if job.scheduled_for else 0
        mode = "s" if lock.mode == "until_started" else "d"
        args += (job.id, body, job.priority, run_at, job.name, lock.key, max(1, ms(lock.ttl_s)), mode)
    rks = list(by_rk)
    return rks, [([prefix(rk) + k for k in ("ready", "scheduled", "signal")] + [ROUTING_KEYS], by_rk[rk]) for rk in rks]


def unique_holders(jobs: UniqueJobs, rks: Sequence[str], replies: Sequence[Any]) -> list[str]:
    """Per job, the id the ``submit_unique`` replies (one per routing key in ``rks``) name."""
    by_rk = {rk: iter(reply) for rk, reply in zip(rks, replies, strict=True)}
    return [_text(next(by_rk[job.routing_key])) for job, _, _ in jobs]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def offer_member(offer: Offer) -> str:
    """An offer in the idle set: ``lease_ms|worker_id`` (hand_off leases for lease_ms)."""
    return f"{ms(offer.lease_s)}|{offer.worker_id}"


def handed(rk: str, raw: bytes) -> tuple[int, Delivery]:
    """A job handed over by submit (``hand_off`` in _lib.lua): its lease deadline (ms) and
    the delivery (first delivery of a new job: no attempts yet, token 1)."""
    deadline, id_len, rest = raw.split(b"|", 2)
    n = int(id_len)
    return int(deadline), Delivery(rest[:n].decode(), rk, rest[n:], 0, 1)


def schedule_key(schedule_id: str) -> str:
    return f"{PREFIX}schedule:{schedule_id}"


def schedule_state(schedule_id: str, fields: dict[bytes, bytes]) -> ScheduleState:
    def at(name: bytes) -> float | None:
        value = fields.get(name)
        return int(value) / 1000 if value else None

    enabled = fields.get(b"enabled")
    error = fields.get(b"last_error")
    job_id = fields.get(b"last_job_id")
    return ScheduleState(
        id=schedule_id, enabled=None if enabled is None else enabled == b"1", last_run=at(b"last_run"),
        next_run=at(b"next_run"), run_count=int(fields.get(b"run_count", b"0")), last_success=at(b"last_success"),
        last_error=error.decode() if error else None, last_job_id=job_id.decode() if job_id else None,
        definition=fields.get(b"definition"),
    )  # fmt: skip


def group(leases: Sequence[Lease]) -> dict[str, list[Lease]]:
    by_rk: dict[str, list[Lease]] = {}
    for lease in leases:
        by_rk.setdefault(lease.routing_key, []).append(lease)
    return by_rk


def _float(value: bytes | None) -> float | None:
    return None if value is None or value == b"" else float(value)


def job_from_hash(job_id: str, rk: str, fields: dict[bytes, bytes]) -> Job:
    """Rebuild the wire-format job from its Redis hash (body + mutable fields)."""
    body = fields.get(b"body", b"")
    try:
        job = wire.decode_job(body)
    except PayloadError as exc:
        job = Job(id=job_id, name="?", payload={}, routing_key=rk, error=str(exc), raw=wire.raw_excerpt(body))
    job.status = JobStatus(fields.get(b"status", b"pending").decode())
    job.attempts = int(fields.get(b"attempts", b"0"))
    job.deliveries = int(fields.get(b"deliveries", b"0"))
    if fields.get(b"error"):
        job.error = fields[b"error"].decode()
    if fields.get(b"traceback"):
        job.traceback = fields[b"traceback"].decode()
    if fields.get(b"reason"):
        job.reason = fields[b"reason"].decode()
    if b"result" in fields:
        try:
            job.result = wire.decode(fields[b"result"])
        except PayloadError:
            job.result = None
    started, finished = _float(fields.get(b"started_at")), _float(fields.get(b"finished_at"))
    job.started_at = started / 1000 if started else None
    job.finished_at = finished / 1000 if finished else None
    scheduled = _float(fields.get(b"scheduled_for"))
    if scheduled:
        job.scheduled_for = scheduled / 1000
    job.progress = _float(fields.get(b"progress"))
    if fields.get(b"worker"):
        job.worker = fields[b"worker"].decode()
    return job


def duty_args(reclaim: Reclaim) -> tuple[int, int]:
    """The dequeue scripts' duty arguments: max deliveries, failed TTL (ms)."""
    return reclaim.max_deliveries, max(1, ms(reclaim.failed_ttl_s))


def duty_reply(raw: list[Any]) -> tuple[int, bool]:
    """Pop what a dequeue with duties appends to its jobs: the next due time (ms, -1 for
    none) and whether this worker was given the isolation duty."""
    isolate = bool(raw.pop())
    return int(raw.pop()), isolate


def deliveries(rk: str, raw: Sequence[Any]) -> list[Delivery]:
    """A dequeue reply (``id, body, token, attempts`` per job) as deliveries."""
    return [Delivery(raw[i].decode(), rk, raw[i + 1], int(raw[i + 2]), int(raw[i + 3])) for i in range(0, len(raw), 4)]


def earliest_due(due_ms: Sequence[int]) -> float | None:
    """The earliest of the due times the dequeue script returned (ms, -1 for none), in s."""
    known = [d for d in due_ms if d >= 0]
    return min(known) / 1000 if known else None
