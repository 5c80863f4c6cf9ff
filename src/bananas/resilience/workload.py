"""The experiments' workload: an app whose handlers sleep and write every start and end
to an outside ledger (``BANANAS_LEDGER``, a JSON-lines file appended by every process),
so lost and duplicated runs are counted without trusting Bananas' own records.

Run workers for it with ``bananas worker --app bananas.resilience.workload:app``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

from bananas import Bananas, Context

#: The environment variable naming the ledger file.
LEDGER_ENV = "BANANAS_LEDGER"

app = Bananas()


def record(event: str, ctx: Context) -> None:
    """Append one ledger line; one ``write`` of a short line to an ``O_APPEND`` file, so
    lines of concurrent processes never interleave."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line: dict[str, Any] = {"e": event, "id": ctx.job_id, "d": ctx.delivery, "pid": os.getpid(), "t": time.time()}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@app.task(timeout=60, max_retries=3)
async def work(ms: int, ctx: Context) -> int:
    """An async job: sleeps ``ms`` milliseconds."""
    record("start", ctx)
    await asyncio.sleep(ms / 1000)
    record("end", ctx)
    return ms


@app.task(timeout=60, max_retries=3)
def work_sync(ms: int, ctx: Context) -> int:
    """A sync job (a thread): sleeps ``ms`` milliseconds."""
    record("start", ctx)
    time.sleep(ms / 1000)
    record("end", ctx)
    return ms


@app.task(timeout=60)
def poison(ctx: Context) -> None:
    """A job that kills the process that runs it (SIGKILL)."""
    record("start", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


def read_ledger(path: str) -> list[dict[str, Any]]:
    """Every event of the ledger (a line cut short by a kill is skipped)."""
    events = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        return []
    return events
