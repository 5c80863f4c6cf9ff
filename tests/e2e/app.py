"""Tasks run by real worker processes in the end-to-end tests.

Files under ``BANANAS_TEST_DIR`` let a test see what a handler did across processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from bananas import Bananas, Context, RetryPolicy

app = Bananas()


def _marker(name: str) -> Path:
    return Path(os.environ["BANANAS_TEST_DIR"]) / name


@app.task
async def noop() -> None:
    return None


@app.task
def pid() -> int:
    return os.getpid()


@app.task
async def apid() -> int:
    return os.getpid()


#: What ``hog`` keeps alive, so that the process's RSS grows with every call.
_hoard: list[bytearray] = []


def _resident(mib: int) -> bytearray:
    """``mib`` MiB with every page touched: resident, not just reserved."""
    block = bytearray(mib * 2**20)
    block[::4096] = b"x" * len(range(0, len(block), 4096))
    return block


@app.task
def hog(mib: int) -> int:
    """Keep ``mib`` MiB more alive in this process (a leaking handler); its pid."""
    _hoard.append(_resident(mib))
    time.sleep(0.15)  # a handler's work: the worker reads its RSS at most every 0.1 s
    return os.getpid()


@app.task(timeout=60)
def balloon(mib: int) -> None:
    """Grows far past any memory limit while it runs (a runaway handler), then works on."""
    block = _resident(mib)
    time.sleep(30)
    del block


@app.task(timeout=60)
async def sleepy(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@app.task(timeout=60, retry=RetryPolicy(base_s=0.05))
async def stall_once(ctx: Context, tag: str) -> str:
    """First delivery writes a marker and hangs (to be killed); later ones finish."""
    marker = _marker(f"{tag}.started")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        await asyncio.sleep(60)
    return f"finished by {os.getpid()}"


@app.task
def crash_worker() -> None:
    """Poison: kills the process that runs it."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(timeout=60)
async def block_loop(seconds: float) -> int:
    """Blocks the worker's event loop (a badly written handler) for longer than a lease."""
    time.sleep(seconds)  # blocking on purpose
    return os.getpid()


@app.task(routing_key="email", priority="high", max_retries=5, timeout=30)
async def send_email(to: str, subject: str) -> dict[str, str]:
    """Send an email (pretend)."""
    return {"to": to, "subject": subject}


@app.task(timeout=2, max_retries=0)
async def hog_loop(seconds: float) -> int:
    """Blocks the worker's event loop past its 2 s timeout (a badly written handler)."""
    time.sleep(seconds)  # blocking on purpose
    return os.getpid()


async def _sleep_blocking(seconds: float) -> int:
    time.sleep(seconds)  # blocking on purpose
    return os.getpid()


@app.task(timeout=2, max_retries=0)
async def hog_loop_gathered(seconds: float) -> int:
    """``hog_loop`` with the blocking call in a task of its own (``gather``)."""
    [pid] = await asyncio.gather(_sleep_blocking(seconds))
    return pid
