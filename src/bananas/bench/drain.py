"""Drain, idle and memory scenarios: real worker processes working through queued jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from bananas import Client, JobSpec
from bananas.bench.procs import WorkerProcess, cpu_s, wait_until
from bananas.worker.memory import rss_mib

#: (label, concurrency per process, processes or None for a single plain worker).
DrainConfig = tuple[str, int, int | None]

#: Worker configurations tried for "the best configuration on 2 cores".
TWO_CORE_CONFIGS: tuple[DrainConfig, ...] = (
    ("2 processes x 100", 100, 2),
    ("2 processes x 50", 50, 2),
    ("3 processes x 50", 50, 3),
)


def queue_many(client: Client, n: int, name: str = "noop", payload: Mapping[str, Any] | None = None) -> list[str]:
    """Submit ``n`` jobs in batches (at most ~4 MiB of payload per call); return the ids."""
    body = dict(payload or {})
    size = len(str(body.get("data", "")))
    batch = max(1, min(1000, (4 << 20) // max(1, size)))
    ids: list[str] = []
    while len(ids) < n:
        ids += client.submit_many([JobSpec(name, body) for _ in range(min(batch, n - len(ids)))])
    return ids


def _busy(client: Client) -> bool:
    return any(s.ready or s.processing or s.scheduled for s in client.queue_stats())


def wait_drained(client: Client, ids: Sequence[str], timeout_s: float) -> float:
    """Wait until no job is ready or processing; return jobs/s from the first job's start
    to the last finish (the worker's start-up time is not counted)."""
    wait_until(lambda: not _busy(client), timeout_s, "the queue to drain", every_s=0.05)
    first = client.get_job(ids[0])
    tail = [client.get_job(i) for i in ids[-200:]]
    ends = [j.finished_at for j in tail if j is not None and j.finished_at is not None]
    if first is None or first.started_at is None or not ends:
        raise RuntimeError("drained jobs have no start/finish times (did their records expire?)")
    return len(ids) / (max(ends) - first.started_at)


def drain(
    client: Client,
    url: str,
    n: int,
    config: DrainConfig,
    payload: Mapping[str, Any] | None = None,
    name: str = "",
    env: Mapping[str, str] | None = None,
) -> float:
    """Queue ``n`` jobs of task ``name`` (default ``sink`` with a payload, else ``noop``), then
    start the workers (with ``env`` added to theirs); jobs/s until all are completed."""
    name = name or ("sink" if payload else "noop")
    ids = queue_many(client, n, name, payload)
    _, concurrency, processes = config
    with WorkerProcess(url, concurrency, processes, env):
        return wait_drained(client, ids, timeout_s=60 + n / 500)


def run_drain(client: Client, url: str, jobs: int, flush: Callable[[], None], quick: bool) -> dict[str, Any]:
    """1 worker process, then the 2-core configurations; the best one is reported too."""
    out: dict[str, Any] = {"one_process_per_s": drain(client, url, jobs, ("1 process x 100", 100, None))}
    flush()
    configs: dict[str, float] = {}
    for config in TWO_CORE_CONFIGS[:1] if quick else TWO_CORE_CONFIGS:
        configs[config[0]] = drain(client, url, jobs, config)
        flush()
    best = max(configs, key=lambda k: configs[k])
    out.update(two_core_configs=configs, best_two_core_per_s=configs[best], best_two_core_config=best)
    return out


class CommandCounter:
    """Counts the commands clients send to Redis (``MONITOR``), leaving out the ones Lua
    scripts run inside a call, and this counter's own."""

    def __init__(self, url: str) -> None:
        # No socket timeout: redis-py drops a connection whose read timed out, which
        # would end the MONITOR stream. __exit__ wakes the reader with a PING instead.
        self._url = url
        self._r = redis.Redis.from_url(url, socket_timeout=None)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self._r.monitor() as m:  # type: ignore[no-untyped-call]
            while True:
                try:
                    cmd = m.next_command()
                except redis.ConnectionError:
                    return
                if self._stop.is_set():
                    return
                if cmd.get("client_type") != "lua":
                    self.count += 1

    def __enter__(self) -> CommandCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        waker = redis.Redis.from_url(self._url)
        waker.ping()
        waker.close()
        self._thread.join(5)
        self._r.close()


def run_idle_and_memory(client: Client, url: str, idle_s: float, jobs: int) -> dict[str, Any]:
    """An idle worker's commands/s, CPU% and RSS; then its RSS after ``jobs`` jobs."""
    with WorkerProcess(url, 100) as worker:
        client.submit_and_wait("noop", {}, timeout=60)  # started, connected, warmed up
        time.sleep(min(2.0, idle_s))
        rss_idle, cpu0, t0 = rss_mib(worker.pid), cpu_s(worker.pid), time.perf_counter()
        with CommandCounter(url) as counter:
            time.sleep(idle_s)
        elapsed = time.perf_counter() - t0
        cpu = (cpu_s(worker.pid) - cpu0) / elapsed * 100
        idle = {"commands_per_s": counter.count / elapsed, "cpu_percent": cpu, "rss_mib": rss_idle}
        ids = queue_many(client, jobs)
        wait_drained(client, ids, timeout_s=120 + jobs / 500)
        time.sleep(0.5)
        rss_after = rss_mib(worker.pid)
    memory = {"idle_rss_mib": rss_idle, "after_jobs": jobs, "after_rss_mib": rss_after}
    memory["growth_percent"] = (rss_after / rss_idle - 1) * 100
    return {"idle": idle, "memory": memory}
