"""Resident set sizes, and the supervisor's memory ceiling: a worker process whose RSS
passes it while a handler runs (one that allocates far past ``--max-memory-per-child``,
too fast for the process to stop by itself) is killed and replaced, and the jobs it held
are judged as after any death (suspects, run alone: only the job that grows past the
ceiling alone is dead-lettered)."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal

logger = logging.getLogger(__name__)

#: How often the supervisor reads its children's RSS.
WATCH_EVERY_S = 0.2
#: The ceiling, as a multiple of ``--max-memory-per-child``.
CEILING_FACTOR = 2.0


def rss_mib(pid: int | None = None) -> float:
    """The resident set size of process ``pid`` (this one by default) in MiB, from
    ``/proc``; this process's peak where there is none, 0 for a process that is gone."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        if pid is None:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return 0.0


async def kill_past(pid: int, ceiling_mib: float, slot: int) -> str:
    """Watch process ``pid`` until its RSS passes ``ceiling_mib``, then SIGKILL it and
    return how it died, for the dead-letter record (runs until cancelled otherwise)."""
    while True:
        await asyncio.sleep(WATCH_EVERY_S)
        rss = rss_mib(pid)
        if rss > ceiling_mib:
            at = f"{rss:.0f} MiB RSS, past the {ceiling_mib:g} MiB ceiling"
            logger.warning("killing worker process %d (pid %d) at %s", slot, pid, at, extra={"component": "supervisor"})
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return ""
            return f"killed by its supervisor at {at}"
