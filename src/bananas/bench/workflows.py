"""The workflow scenario: what a node costs next to a plain job, with the same workers.

- ceiling: ``n`` independent no-op jobs, queued, then drained by one worker process
  (jobs/s), and how long submitting them took;
- chord: an ``n``-member chord of no-op jobs with a counting callback, submitted, then
  drained the same way: members/s from the first member's start to the last member's end
  (what a member costs), and from the first member's start to the callback's end (the
  callback reads all ``n`` results);
- chain: a chain of ``steps`` ``relay`` steps; each returns its start and end time, and
  the gap from one step's end to the next one's start is the step latency (p50, p99).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from bananas import Client, Signature, chain, chord, group
from bananas.bench import tasks
from bananas.bench.drain import queue_many, wait_drained
from bananas.bench.latency import percentiles
from bananas.bench.procs import WorkerProcess

#: Worker configuration: one process, as the ``drain`` scenario's first number.
CONCURRENCY = 100


def _plain(client: Client, url: str, n: int) -> tuple[float, float]:
    """Seconds to submit ``n`` no-op jobs, and their drain rate (jobs/s)."""
    started = time.perf_counter()
    ids = queue_many(client, n)
    submitted = time.perf_counter() - started
    with WorkerProcess(url, CONCURRENCY):
        return submitted, wait_drained(client, ids, timeout_s=60 + n / 500)


def _chord(url: str, n: int) -> tuple[float, float, float]:
    """Seconds to submit an ``n``-member chord, and its drain rates (members/s until the
    last member's end, and until the callback's end), submitted before the workers start
    as the plain jobs are."""
    canvas = chord(group(Signature("noop") for _ in range(n)), Signature("count"))
    with Client(url, app=tasks.app) as client:
        started = time.perf_counter()
        handle = client.submit_workflow(canvas)
        submitted = time.perf_counter() - started
        with WorkerProcess(url, CONCURRENCY):
            counted = handle.wait(timeout=120 + n / 200)
            record = handle.get()
    if counted != n:
        raise RuntimeError(f"the chord's callback counted {counted} results, not {n}")
    members = [node.job for node in record.nodes[:-1] if node.job is not None]
    callback = record.nodes[-1].job
    starts = [j.started_at for j in members if j.started_at is not None]
    ends = [j.finished_at for j in members if j.finished_at is not None]
    if callback is None or callback.finished_at is None or not starts:
        raise RuntimeError("the chord's jobs have no start/finish times (did their records expire?)")
    return submitted, n / (max(ends) - min(starts)), n / (callback.finished_at - min(starts))


def _chain_gaps(client: Client, url: str, steps: int) -> list[float]:
    canvas = chain(*(Signature("relay") for _ in range(steps)))
    with WorkerProcess(url, CONCURRENCY), Client(url, app=tasks.app) as own:
        handle = own.submit_workflow(canvas)
        handle.wait(timeout=60 + steps / 20)
        results = handle.results()
    times = [results[str(i)] for i in range(steps)]
    return [(after["start"] - before["end"]) * 1e3 for before, after in itertools.pairwise(times)]


def run_workflows(
    client: Client, url: str, jobs: int, flush: Callable[[], Any], quick: bool, rounds: int = 3
) -> dict[str, Any]:
    """Plain jobs and the chord alternately, ``rounds`` times (medians: this machine is
    noisy), then the chain; ratios against the plain jobs of the same rounds."""
    n = min(jobs, 10_000)
    steps = 50 if quick else 1000
    plain, chords = [], []
    for _ in range(rounds):
        plain.append(_plain(client, url, n))
        flush()
        chords.append(_chord(url, n))
        flush()
    gaps = _chain_gaps(client, url, steps)
    flush()
    p = percentiles(gaps)
    med = statistics.median
    return {
        "members": n, "rounds": rounds, "plain_jobs_per_s": med(r for _, r in plain),
        "chord_members_per_s": med(r for _, r, _ in chords),
        "chord_member_cost_vs_plain_job": med(pr / cr for (_, pr), (_, cr, _) in zip(plain, chords, strict=True)),
        "chord_with_callback_cost_vs_plain_job": med(
            pr / cr for (_, pr), (_, _, cr) in zip(plain, chords, strict=True)
        ),
        "plain_submit_s": med(s for s, _ in plain), "chord_submit_s": med(s for s, _, _ in chords),
        "chord_submit_vs_plain_submit": med(cs / ps for (ps, _), (cs, _, _) in zip(plain, chords, strict=True)),
        "chain_steps": steps,
        "chain_step_latency_ms": {"p50": p["p50_ms"], "p99": p["p99_ms"], "mean": statistics.fmean(gaps)},
    }  # fmt: skip
