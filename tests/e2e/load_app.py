"""Sleeping handlers, half sync and half async, that keep a ledger outside Bananas: one
line per start (``start <job id> <delivery> <pid>``) appended to BANANAS_LEDGER."""

from __future__ import annotations

import asyncio
import os
import time

from bananas import Bananas, Context

app = Bananas()
_ledger = os.open(os.environ.get("BANANAS_LEDGER", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _started(ctx: Context) -> None:
    os.write(_ledger, f"start {ctx.job_id} {ctx.delivery} {os.getpid()}\n".encode())  # one write: atomic


@app.task(timeout=30)
async def async_nap(ctx: Context, ms: int) -> int:
    _started(ctx)
    await asyncio.sleep(ms / 1000)
    return ms


@app.task(timeout=30)
def sync_nap(ctx: Context, ms: int) -> int:
    _started(ctx)
    time.sleep(ms / 1000)
    return ms
