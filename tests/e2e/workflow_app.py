"""Diamond-workflow tasks for the crash tests: each naps a little, then appends
``done <job id> <delivery> <pid>`` to BANANAS_LEDGER (a ledger kept outside Bananas) as
it completes."""

from __future__ import annotations

import asyncio
import os
import time

from bananas import Bananas, Context, PermanentError

app = Bananas()
_ledger = os.open(os.environ.get("BANANAS_LEDGER", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _done(ctx: Context, ms: int) -> None:
    time.sleep(ms / 1000)
    os.write(_ledger, f"done {ctx.job_id} {ctx.delivery} {os.getpid()}\n".encode())  # one write: atomic


@app.task(timeout=30)
def source(ctx: Context, n: int, ms: int) -> int:
    _done(ctx, ms)
    return n


@app.task(timeout=30)
def left(ctx: Context, x: int, ms: int) -> int:
    _done(ctx, ms)
    return x * 2


@app.task(timeout=30)
def right(ctx: Context, x: int, ms: int) -> int:
    _done(ctx, ms)
    return x + 1000


@app.task(timeout=30)
def join(ctx: Context, a: int, b: int, ms: int) -> int:
    _done(ctx, ms)
    return a + b


@app.task(timeout=30)
def die(ctx: Context) -> None:
    """Kill this worker process (a poison node: dead-lettered worker_lost in the end)."""
    os.kill(os.getpid(), 9)


@app.task(timeout=30)
def after(ctx: Context, parent: object) -> object:
    return parent


def _note(line: str) -> None:
    os.write(_ledger, f"{line}\n".encode())


@app.task(timeout=30)
def mark(tag: str, seen: object = None) -> str:
    """Note ``ran <tag>`` in the ledger."""
    _note(f"ran {tag}")
    return tag


@app.task(timeout=30)
def gated(gate: str, seen: object = None) -> str:
    """Fail for good while the file ``gate`` exists (a fault the test repairs)."""
    if os.path.exists(gate):
        _note("gated refused")
        raise PermanentError("the gate is closed")
    _note("ran gated")
    return "through"


@app.task(timeout=30)
async def hold(ctx: Context) -> str:
    """Run until cancelled (at most 30 s); note ``cancelled <job id>`` once the cancel
    reached it (``ctx.cancelled`` set, then this task cancelled)."""
    _note(f"holding {ctx.job_id}")
    try:
        await asyncio.sleep(30)
    finally:
        if ctx.cancelled:
            _note(f"cancelled {ctx.job_id}")
    return "never cancelled"
