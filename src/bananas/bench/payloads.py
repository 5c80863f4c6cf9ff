"""Enqueue and drain with 1 KiB, 10 KiB and 100 KiB payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bananas import Client
from bananas.bench.drain import drain
from bananas.bench.enqueue import submit_in_batches, submit_one_at_a_time

#: Payload sizes in bytes.
SIZES = (1024, 10 * 1024, 100 * 1024)
#: Payload bytes one part of the scenario moves at most (keeps Redis small).
MAX_BYTES = 64 << 20


def run_payloads(client: Client, url: str, jobs: int, flush: Callable[[], None]) -> dict[str, Any]:
    """For each size: one-at-a-time and batched submits, and a 1-process drain."""
    out: dict[str, Any] = {}
    for size in SIZES:
        n = max(10, min(jobs, MAX_BYTES // size))
        payload = {"data": "x" * size}
        batch = max(1, min(1000, (4 << 20) // size, n))
        row: dict[str, Any] = {"jobs": n}
        row["one_at_a_time_per_s"] = submit_one_at_a_time(client, n, "sink", payload)
        flush()
        row["submit_many_per_s"] = submit_in_batches(client, n, batch, "sink", payload)
        row["submit_many_mib_per_s"] = row["submit_many_per_s"] * size / (1 << 20)
        flush()
        row["drain_one_process_per_s"] = drain(client, url, n, ("1 process x 100", 100, None), payload)
        flush()
        out[f"{size // 1024}KiB"] = row
    return out
