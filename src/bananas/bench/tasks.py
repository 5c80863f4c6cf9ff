"""The no-op tasks every benchmark scenario runs (``--app bananas.bench.tasks:app``)."""

from __future__ import annotations

import time

from bananas import Bananas

app = Bananas()


@app.task
async def noop() -> None:
    """Do nothing: the queue's own cost is what is measured."""
    return None


@app.task
async def sink(data: str = "") -> None:
    """Do nothing with a payload (the payload scenarios)."""
    return None


@app.task
async def stamp() -> float:
    """Return the wall-clock time the handler started (submit -> start latency)."""
    return time.time()
