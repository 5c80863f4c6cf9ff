"""``Supervisor``: keep P worker processes running, restart the ones that die, stop them together.

Children are plain subprocesses (``python -m bananas worker ... --processes 1``), so each
one is a complete worker with its own event loop, lease keeper and grace period, and a
child that crashes takes nothing else down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bananas.worker.memory import kill_past

logger = logging.getLogger(__name__)

#: Exit code of a child that reached its --max-jobs-per-child/--max-memory-per-child
#: limit and stopped cleanly: it is replaced at once and not counted as a death.
RECYCLE_EXIT = 75
#: Pause before restarting a child that died; doubles while it keeps dying young.
RESTART_MIN_S = 0.5
#: Longest pause between restarts of a child in a crash loop.
RESTART_MAX_S = 30.0
#: A child that ran this long before dying counts as healthy: its next pause is the shortest.
STABLE_S = 10.0


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``signal SIGKILL`` for a ``returncode``."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


class Supervisor:
    """Run ``processes`` copies of ``argv`` until ``stop()`` (SIGTERM/SIGINT).

    Args:
        argv: the child command line.
        processes: how many children to keep running.
        stop_timeout_s: after a stop signal was forwarded, how long to wait for children
            (their own grace period plus storing outcomes) before killing them.
        env: the children's environment (default: this process's).
        restart_min_s: first pause before restarting a dead child.
        restart_max_s: longest pause, reached while a child keeps dying young.
        stable_s: a child that lived this long gets the shortest pause again.
        on_death: awaited with an exited child's pid and how it ended (``signal SIGKILL``)
            before it is restarted: the CLI gives back at once any job it still held.
        memory_ceiling_mib: a child whose RSS passes it is killed (``worker.memory``).
    """

    def __init__(
        self,
        argv: Sequence[str],
        processes: int,
        *,
        stop_timeout_s: float,
        env: Mapping[str, str] | None = None,
        restart_min_s: float = RESTART_MIN_S,
        restart_max_s: float = RESTART_MAX_S,
        stable_s: float = STABLE_S,
        on_death: Callable[[int, str], Awaitable[object]] | None = None,
        memory_ceiling_mib: float | None = None,
    ) -> None:
        self.on_death = on_death
        self.memory_ceiling_mib = memory_ceiling_mib
        self.argv = list(argv)
        self.processes = processes
        self.stop_timeout_s = stop_timeout_s
        self.env = dict(env) if env is not None else None
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self.stable_s = stable_s
        self.restarts = 0
        #: children replaced after reaching their job or memory limit.
        self.recycled = 0
        self.killed = 0
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._stop_signal = signal.SIGTERM
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stopping(self) -> bool:
        """True once a stop began."""
        return self._stopping.is_set()

    @property
    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        return [p.pid for p in self._children.values()]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Forward ``sig`` to every child and stop restarting them (call on the loop's thread)."""
        if not self._stopping.is_set():
            logger.info("supervisor got %s: stopping %d children", sig.name, len(self._children))
        self._stop_signal = sig
        self._stopping.set()
        for proc in list(self._children.values()):
            _send(proc, sig)

    async def run(self, *, install_signals: bool = True) -> int:
        """Start the children and supervise them until stopped.

        Returns:
            0 when every child stopped by itself, 1 when some had to be killed.
        """
        self._loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if install_signals else ()
        for sig in signals:
            self._loop.add_signal_handler(sig, self.stop, sig)
        logger.info("supervisor starting %d worker processes", self.processes)
        slots = [asyncio.create_task(self._keep(slot)) for slot in range(self.processes)]
        try:
            await self._stopping.wait()
            await self._wait_or_kill(slots)
        finally:
            orphans = list(self._children.values())  # none unless run() itself was cancelled
            for task in slots:
                task.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            for proc in orphans:
                _send(proc, signal.SIGTERM)
            for sig in signals:
                self._loop.remove_signal_handler(sig)
        logger.info("supervisor stopped (%d restarts, %d killed)", self.restarts, self.killed)
        return 1 if self.killed else 0

    async def _keep(self, slot: int) -> None:
        """Keep one child running: start it, wait for it, restart it after a pause."""
        loop = asyncio.get_running_loop()
        pause = 0.0
        while not self._stopping.is_set():
            started = loop.time()
            code, how, pid = await self._run_child(slot)
            if self._stopping.is_set():
                return
            if self.on_death is not None and pid is not None and code is not None:
                # A recycled child held nothing, unless a loop watch ended it while its loop
                # was waking up: whatever it fetched meanwhile comes back at once too.
                await self._report_death(pid, how)
            if code == RECYCLE_EXIT:  # it reached its job or memory limit and stopped cleanly
                self.recycled += 1
                logger.info("worker process %d recycled (pid %s, %s); starting a fresh one", slot, pid, how,
                            extra={"component": "supervisor"})  # fmt: skip
                continue
            lived = loop.time() - started
            pause = self.next_pause(pause, lived)
            self.restarts += 1
            logger.warning(
                "worker process %d died (pid %s, %s) after %.1f s; restarting in %.1f s", slot, pid, how, lived, pause,
                extra={"component": "supervisor"},
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _report_death(self, pid: int, how: str) -> None:
        assert self.on_death is not None
        try:
            await self.on_death(pid, how)
        except Exception as exc:  # noqa: BLE001 - its jobs still come back when their leases expire
            logger.warning("could not report the death of pid %d: %s", pid, exc, extra={"component": "supervisor"})

    def next_pause(self, previous_s: float, lived_s: float) -> float:
        """Pause before a restart: the shortest after a healthy run, else double the last one."""
        if lived_s >= self.stable_s:
            return self.restart_min_s
        return min(self.restart_max_s, max(self.restart_min_s, previous_s * 2))

    async def _run_child(self, slot: int) -> tuple[int | None, str, int | None]:
        """Start child ``slot``, wait for it to exit; its exit code, how it ended, its pid."""
        try:
            proc = await asyncio.create_subprocess_exec(*self.argv, env=self.env)
        except OSError as exc:
            logger.error("could not start worker process %d: %s", slot, exc, extra={"component": "supervisor"})
            return None, f"not started: {exc}", None
        self._children[slot] = proc
        logger.info("worker process %d started (pid %d)", slot, proc.pid, extra={"component": "supervisor"})
        if self._stopping.is_set():  # a stop arrived while it was being spawned
            _send(proc, self._stop_signal)
        ceiling = self.memory_ceiling_mib
        watch = asyncio.create_task(kill_past(proc.pid, ceiling, slot)) if ceiling else None
        try:
            code = await proc.wait()
        finally:
            self._children.pop(slot, None)
            if watch is not None:
                watch.cancel()
        killed = watch is not None and watch.done() and not watch.cancelled() and watch.result()
        how = killed or describe_exit(code)
        if self._stopping.is_set():
            logger.info("worker process %d (pid %d) exited: %s", slot, proc.pid, how, extra={"component": "supervisor"})
        return code, how, proc.pid

    async def _wait_or_kill(self, slots: list[asyncio.Task[None]]) -> None:
        """Wait for the children to finish their graceful stop; kill those that overrun."""
        _, late = await asyncio.wait(slots, timeout=self.stop_timeout_s)
        if not late:
            return
        for slot, proc in list(self._children.items()):
            logger.warning(
                "worker process %d (pid %d) still running after %.0f s; killing it", slot, proc.pid,
                self.stop_timeout_s, extra={"component": "supervisor"},
            )  # fmt: skip
            self.killed += 1
            _send(proc, signal.SIGKILL)
        await asyncio.wait(late)


def _send(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal a child unless it has already exited."""
    with contextlib.suppress(ProcessLookupError):
        if proc.returncode is None:
            proc.send_signal(sig)
