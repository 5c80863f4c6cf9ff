"""``run``: one experiment, from starting the broker and workers to the final ledger.

While the workload is submitted (evenly over the duration), each fault runs on its own
schedule and the queue depths are sampled every second. Then the runner waits for every
job to end (at most ``settle``), reads each job's final record, stops what it started
and returns everything it saw for the report (``report.analyse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bananas.client.aio import AsyncClient
from bananas.errors import BananasError, ConfigurationError
from bananas.job import Job
from bananas.resilience.experiment import Experiment, Fault
from bananas.resilience.fleet import Broker, Workers
from bananas.resilience.workload import LEDGER_ENV, read_ledger
from bananas.submission import JobSpec

logger = logging.getLogger(__name__)

#: The BANANAS_ENV the runner gives workers that get a chaos file.
CHAOS_ENVIRONMENT = "chaos"


@dataclass
class Observed:
    """What one run saw (times are unix seconds)."""

    started_at: float
    submitted: dict[str, float] = field(default_factory=dict)  # job id -> when submitted
    poison: set[str] = field(default_factory=set)
    kills: list[float] = field(default_factory=list)
    worker_recovery_s: list[float] = field(default_factory=list)
    partitions: list[tuple[float, float]] = field(default_factory=list)
    broker_restarts: list[float] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    faults_ended_at: float = 0.0
    settled_at: float | None = None
    final: dict[str, Job | None] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    submit_retries: int = 0
    deaths: int = 0  # worker processes that died by themselves (restarted)


class Run:
    """The state of one experiment while it runs (see ``run``)."""

    def __init__(self, exp: Experiment, workdir: Path, say: Callable[[str], None]) -> None:
        self.exp, self.workdir, self.say = exp, workdir, say
        self.seen = Observed(time.time())
        self.ledger = exp.ledger or str(workdir / "ledger.jsonl")
        self.broker = Broker(exp.url, workdir, any(f.kind == "partition" for f in exp.faults))
        self.random = random.Random(7)

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BANANAS_CHAOS"}
        env[LEDGER_ENV] = self.ledger
        if self.exp.worker_chaos:
            env.update({"BANANAS_CHAOS": self.exp.worker_chaos, "BANANAS_ENV": CHAOS_ENVIRONMENT})
        return env

    async def submit(self, client: AsyncClient, deadline: float) -> None:
        """Submit the workload evenly until ``deadline`` (monotonic), poison jobs half-way."""
        exp, start = self.exp, time.monotonic()
        poison_at = exp.jobs // 2
        done = 0
        while done < exp.jobs:
            due = min(exp.jobs, int(exp.rate * (time.monotonic() - start)) + 1)
            specs = [self.spec() for _ in range(due - done)]
            if done <= poison_at < due:
                specs += [JobSpec("poison") for _ in range(exp.poison)]
            built = [client.build(s) for s in specs]
            while True:  # the same ids again after a failure: a broker restart loses nothing
                try:
                    await client.broker.enqueue(built)
                    break
                except BananasError:
                    self.seen.submit_retries += 1
                    await asyncio.sleep(0.2)
            now = time.time()
            for job, _ in built:
                self.seen.submitted[job.id] = now
                if job.name == "poison":
                    self.seen.poison.add(job.id)
            done = due
            await asyncio.sleep(max(0.0, min(0.1, deadline - time.monotonic())))

    def spec(self) -> JobSpec:
        low, high = self.exp.sleep_s
        name = "work" if self.random.random() < self.exp.async_share else "work_sync"
        return JobSpec(name, {"ms": round(self.random.uniform(low, high) * 1000)})

    async def fault(self, fault: Fault, workers: Workers, deadline: float) -> None:
        """Inject one fault on its schedule until ``deadline`` (monotonic)."""
        if fault.at_s is not None:
            await asyncio.sleep(fault.at_s)
        while time.monotonic() < deadline:
            if fault.every_s is not None:
                await asyncio.sleep(fault.every_s)
                if time.monotonic() >= deadline:
                    return
            await self.inject(fault, workers)
            if fault.every_s is None:
                return

    async def inject(self, fault: Fault, workers: Workers) -> None:
        now = time.time()
        if fault.kind == "kill_worker":
            self.seen.kills.append(now)
            up = await workers.kill_one()
            if up is not None:
                self.seen.worker_recovery_s.append(up)
        elif fault.kind == "partition":
            assert self.broker.proxy is not None
            self.broker.proxy.partition(fault.duration_s)
            self.seen.partitions.append((now, now + fault.duration_s))
        else:
            self.seen.broker_restarts.append(now)
            await self.broker.restart(fault.duration_s)
        self.say(f"{now - self.seen.started_at:6.1f} s  {fault.kind}")

    async def sample(self, client: AsyncClient) -> None:
        """Queue depths every second (a failed reading is skipped: the broker may be down)."""
        while True:
            with contextlib.suppress(BananasError, OSError):
                stats = await client.queue_stats()
                self.seen.samples.append({
                    "t": time.time(), "ready": sum(s.ready + s.suspects for s in stats),
                    "scheduled": sum(s.scheduled for s in stats), "processing": sum(s.processing for s in stats),
                    "dead": sum(s.dead for s in stats),
                })  # fmt: skip
            await asyncio.sleep(1.0)

    async def settle(self, client: AsyncClient) -> None:
        """Wait until every submitted job is terminal, at most ``settle``."""
        deadline = time.monotonic() + self.exp.settle_s
        pending = set(self.seen.submitted)
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            with contextlib.suppress(BananasError, OSError):
                jobs = await _get_jobs(client, list(pending)[:500])
                pending -= {j.id for j in jobs if j is not None and j.status.value in ("completed", "failed")}
        if not pending:
            self.seen.settled_at = time.time()

    async def final(self, client: AsyncClient) -> None:
        ids = list(self.seen.submitted)
        for job_id, job in zip(ids, await _get_jobs(client, ids), strict=True):
            self.seen.final[job_id] = job


async def _get_jobs(client: AsyncClient, ids: list[str], at_once: int = 20) -> list[Job | None]:
    """The records of ``ids``, ``at_once`` requests in flight (the connection pool's size)."""
    out: list[Job | None] = []
    for i in range(0, len(ids), at_once):
        out += await asyncio.gather(*(client.get_job(j) for j in ids[i : i + at_once]))
    return out


async def run(exp: Experiment, workdir: Path, say: Callable[[str], None] = print) -> Observed:
    """Run ``exp`` with its files in ``workdir``; what it saw."""
    r = Run(exp, workdir, say)
    worker_url = await r.broker.start()
    client = AsyncClient(r.broker.url, chaos=None)
    workers = Workers(worker_url, exp.workers, ["--concurrency", str(exp.concurrency), *exp.worker_args],
                      r.worker_env(), workdir)  # fmt: skip
    try:
        workers.start()
        for slot in range(exp.workers):
            if await workers.ready(slot) is None:
                log = workers.logs[slot].read_text(errors="replace")[-2000:]
                raise ConfigurationError(f"worker {slot} did not start ([workers] args?); its output:\n{log}")
        say(f"{exp.workers or 'running'} workers up; submitting {exp.jobs} jobs over {exp.duration_s:g} s")
        r.seen.started_at = time.time()
        deadline = time.monotonic() + exp.duration_s
        sampler = asyncio.create_task(r.sample(client))
        keeper = asyncio.create_task(workers.keep_up())
        faults = [asyncio.create_task(r.fault(f, workers, deadline)) for f in exp.faults]
        await r.submit(client, deadline)
        await asyncio.gather(*faults)
        r.seen.faults_ended_at = time.time()
        await r.settle(client)
        sampler.cancel()
        keeper.cancel()
        r.seen.deaths = workers.deaths
        await r.final(client)
    finally:
        await workers.stop()
        await client.close()
        await r.broker.stop()
    r.seen.ledger = read_ledger(r.ledger)
    return r.seen
