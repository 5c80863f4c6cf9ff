"""The resilience report: ``analyse`` turns what a run saw into figures and checks (JSON),
``html`` draws them on one self-contained page (inline SVG, no scripts).

Lost and duplicated jobs come from the outside ledger and the final records: a job is
*lost* when it neither completed nor was dead-lettered; a *duplicate* started more than
once; a *recovery* is the time from a run that left no outcome to the job's next start.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

from bananas.resilience.experiment import Experiment
from bananas.resilience.runner import Observed


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None, "values": []}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)

    return {"count": len(values), "p50": pick(0.5), "p95": pick(0.95), "max": round(ordered[-1], 3),
            "values": [round(v, 3) for v in ordered]}  # fmt: skip


def _starts(seen: Observed) -> dict[str, list[dict[str, Any]]]:
    starts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in seen.ledger:  # a ledger of running workers may hold other runs' jobs too
        if event.get("e") == "start" and event.get("id") in seen.submitted:
            starts[event["id"]].append(event)
    for runs in starts.values():
        runs.sort(key=lambda e: e["t"])
    return starts


def _totals(seen: Observed, starts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    ordinary = [i for i in seen.submitted if i not in seen.poison]
    status = {i: (j.status.value if j is not None else "missing") for i, j in seen.final.items()}
    completed = sum(status.get(i) == "completed" for i in ordinary)
    dead = sum(status.get(i) == "failed" for i in ordinary)
    twice = {i: runs for i, runs in starts.items() if len(runs) > 1 and i not in seen.poison}
    return {
        "submitted": len(ordinary), "completed": completed, "dead_lettered": dead,
        "lost": len(ordinary) - completed - dead, "stuck": [i for i in ordinary if status.get(i) not in
                                                            ("completed", "failed")][:20],
        "success_rate": round(completed / len(ordinary), 6) if ordinary else 1.0,
        "duplicated_jobs": len(twice), "duplicate_starts": sum(len(r) - 1 for r in twice.values()),
        "duplicates_without_later_delivery": sum(1 for r in twice.values() for a, b in itertools.pairwise(r)
                                                 if b["d"] <= a["d"]),
        "poison": len(seen.poison), "poison_dead_lettered": sum(status.get(i) == "failed" for i in seen.poison),
        "submit_retries": seen.submit_retries,
    }  # fmt: skip


def _series(seen: Observed) -> dict[str, list[list[float]]]:
    t0 = seen.started_at
    ends: dict[int, int] = defaultdict(int)
    for event in seen.ledger:
        if event.get("e") == "end" and event.get("id") in seen.submitted:
            ends[int(event["t"] - t0)] += 1
    by_second: dict[int, list[bool]] = defaultdict(list)
    for job_id, at in seen.submitted.items():
        if job_id not in seen.poison:
            job = seen.final.get(job_id)
            by_second[int(at - t0)].append(job is not None and job.status.value == "completed")
    return {
        "depth": [[round(s["t"] - t0, 1), s["ready"] + s["scheduled"]] for s in seen.samples],
        "processing": [[round(s["t"] - t0, 1), s["processing"]] for s in seen.samples],
        "throughput": [[float(sec), float(n)] for sec, n in sorted(ends.items())],
        "success_rate": [[float(sec), sum(ok) / len(ok)] for sec, ok in sorted(by_second.items())],
    }


def _recoveries(starts: dict[str, list[dict[str, Any]]]) -> list[float]:
    return [b["t"] - a["t"] for runs in starts.values() for a, b in itertools.pairwise(runs)]


def analyse(exp: Experiment, seen: Observed) -> dict[str, Any]:
    """The report of one run: totals, fault counts, recovery times, series and checks."""
    starts = _starts(seen)
    totals = _totals(seen, starts)
    last_fault = max([seen.started_at, *seen.kills, *(e for _, e in seen.partitions), *seen.broker_restarts])
    settle = None if seen.settled_at is None else round(max(0.0, seen.settled_at - last_fault), 3)
    c = exp.checks
    checks = [
        ("jobs lost", f"<= {c.max_lost}", totals["lost"], totals["lost"] <= c.max_lost),
        ("success rate", f">= {c.min_success_rate:g}", totals["success_rate"],
         totals["success_rate"] >= c.min_success_rate),
        ("every job terminal after the last fault", f"within {c.max_settle_s:g} s", settle,
         settle is not None and settle <= c.max_settle_s),
    ]  # fmt: skip
    if c.max_dead is not None:
        checks.append(("ordinary jobs dead-lettered", f"<= {c.max_dead}", totals["dead_lettered"],
                       totals["dead_lettered"] <= c.max_dead))  # fmt: skip
    if c.duplicates_have_later_delivery:
        bad = totals["duplicates_without_later_delivery"]
        checks.append(("every duplicate start is a later delivery", "0 exceptions", bad, bad == 0))
    if seen.poison:
        checks.append(("poison jobs dead-lettered", str(len(seen.poison)), totals["poison_dead_lettered"],
                       totals["poison_dead_lettered"] == len(seen.poison)))  # fmt: skip
    return {
        "name": exp.name, "started_at": seen.started_at, "duration_s": exp.duration_s, "broker": exp.url,
        "workers": exp.workers, "concurrency": exp.concurrency, "jobs": exp.jobs,
        "faults": {"kills": len(seen.kills), "partitions": len(seen.partitions),
                   "broker_restarts": len(seen.broker_restarts), "worker_deaths": seen.deaths},
        "totals": totals, "settle_s": settle,
        "recovery_s": _spread(_recoveries(starts)), "worker_recovery_s": _spread(seen.worker_recovery_s),
        "series": _series(seen),
        "events": {"kills": [round(t - seen.started_at, 2) for t in seen.kills],
                   "partitions": [[round(a - seen.started_at, 2), round(b - seen.started_at, 2)]
                                  for a, b in seen.partitions],
                   "broker_restarts": [round(t - seen.started_at, 2) for t in seen.broker_restarts]},
        "checks": [{"check": n, "expected": e, "actual": a, "ok": ok} for n, e, a, ok in checks],
        "ok": all(ok for *_, ok in checks),
    }  # fmt: skip
