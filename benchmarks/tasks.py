"""No-op tasks the benchmarks run."""

from __future__ import annotations

import time

from bananas import Bananas

app = Bananas()


@app.task
async def noop() -> None:
    return None


@app.task
async def stamp() -> float:
    """Return the wall-clock time the handler started (for submit -> start latency)."""
    return time.time()
