"""The I/O scenario: jobs whose body does one Redis round trip, and its body-only ceiling.

Real jobs wait on I/O. Here every job's body is one ``INCR`` with ``redis.asyncio``
(``bananas.bench.tasks.io``). The *body-only ceiling* runs the same body with no queue at
all: 2 processes x 100 coroutines, each looping ``INCR`` until the counter it increments
reaches the number of jobs (so the work is shared as a queue would share it, and a
process that gets less CPU does not hold the others back). Both run against the same
redis-server, in the same run, in turns, so the ratio Bananas ÷ ceiling holds on a noisy
machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from bananas import Client
from bananas.bench.drain import drain

#: The key every I/O body increments (the job and the ceiling alike).
IO_KEY = "bench:io"
#: The ceiling's shape, the same as the Bananas configuration it is compared with.
CEILING_PROCESSES, CEILING_COROUTINES = 2, 100


async def _ceiling_process(url: str, n: int, coroutines: int, start_at: float) -> tuple[float, float, int]:
    """One process's part of the ceiling: ``coroutines`` loops of ``INCR`` until the
    shared counter reaches ``n``; (start, end, bodies run here)."""
    r = aioredis.Redis.from_url(url, max_connections=coroutines)
    await asyncio.gather(*(r.ping() for _ in range(coroutines)))  # every connection open before the clock starts
    ran = [0]

    async def loop() -> None:
        while await r.incr(IO_KEY) <= n:
            ran[0] += 1

    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    await asyncio.gather(*(loop() for _ in range(coroutines)))
    t1 = time.time()
    await r.aclose()
    return t0, t1, ran[0]


def body_ceiling(url: str, n: int, processes: int = CEILING_PROCESSES, coroutines: int = CEILING_COROUTINES) -> float:
    """Bodies/s of ``processes`` x ``coroutines`` running the I/O body ``n`` times in all."""
    start_at = time.time() + 1.0  # every process is up and connected by then
    cmd = [sys.executable, "-m", "bananas.bench.io", url, str(n), str(coroutines), repr(start_at)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    spans: list[tuple[float, float, int]] = []
    for p in procs:
        out, _ = p.communicate(timeout=120 + n / 1000)
        if p.returncode != 0:
            raise RuntimeError(f"ceiling process exited {p.returncode}")
        start, end, ran = json.loads(out)
        spans.append((float(start), float(end), int(ran)))
    if sum(s[2] for s in spans) != n:
        raise RuntimeError(f"the ceiling ran {sum(s[2] for s in spans)} bodies, not {n} (was {IO_KEY} in use?)")
    return n / (max(s[1] for s in spans) - min(s[0] for s in spans))


def run_io(client: Client, url: str, jobs: int, flush: Callable[[], None], rounds: int) -> dict[str, Any]:
    """``rounds`` x (ceiling and Bananas 2 processes x 100 draining ``io`` jobs, in turns
    first); medians."""
    ceilings: list[float] = []
    drains: list[float] = []
    for i in range(rounds):
        for part in ("ceiling", "bananas") if i % 2 == 0 else ("bananas", "ceiling"):
            flush()
            if part == "ceiling":
                ceilings.append(body_ceiling(url, jobs))
            else:
                drains.append(drain(client, url, jobs, ("2 processes x 100", 100, 2), name="io"))
        flush()
    ceiling, bananas = statistics.median(ceilings), statistics.median(drains)
    return {"rounds": rounds, "ceiling_per_s": ceiling, "ceilings": ceilings, "two_core_per_s": bananas,
            "drains": drains, "of_ceiling": bananas / ceiling}  # fmt: skip


def _main() -> None:
    url, n, coroutines, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    os.environ.pop("PYTHONASYNCIODEBUG", None)
    print(json.dumps(asyncio.run(_ceiling_process(url, n, coroutines, start_at))))


if __name__ == "__main__":
    _main()
