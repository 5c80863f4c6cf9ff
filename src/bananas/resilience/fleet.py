"""The processes an experiment runs: worker processes it can SIGKILL and restart, and
the broker (a private ``redis-server`` it can restart, behind a proxy it can partition)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bananas.resilience.proxy import PartitionProxy
from bananas.testing.server import RedisServer

WORKLOAD_APP = "bananas.resilience.workload:app"


class Workers:
    """``count`` worker processes of the workload app, each restartable after a kill."""

    def __init__(self, url: str, count: int, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.url, self.count, self.args, self.env, self.logdir = url, count, args, env, logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self._starts = 0
        self._random = random.Random()
        self._killing: set[int] = set()
        #: workers that died without being killed by the runner (a poison job, a chaos crash).
        self.deaths = 0

    def start(self) -> None:
        for _ in range(self.count):
            proc, log = self._spawn()
            self.procs.append(proc)
            self.logs.append(log)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logdir / f"worker-{self._starts}.log"
        self._starts += 1
        cmd = [sys.executable, "-m", "bananas", "worker", "--app", WORKLOAD_APP, "--url", self.url, *self.args]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        return proc, log

    async def ready(self, slot: int, timeout_s: float = 30.0) -> float | None:
        """Wait until worker ``slot`` logged that it started; the monotonic time, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if " started: routing keys" in self.logs[slot].read_text(errors="replace"):
                return time.monotonic()
            if self.procs[slot].poll() is not None:
                return None
            await asyncio.sleep(0.05)
        return None

    async def kill_one(self) -> float | None:
        """SIGKILL a random worker, start a new one in its place; seconds until it is up."""
        slot = self._random.randrange(len(self.procs))
        proc = self.procs[slot]
        killed_at = time.monotonic()
        self._killing.add(slot)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
            self.procs[slot], self.logs[slot] = self._spawn()
        finally:
            self._killing.discard(slot)
        up = await self.ready(slot)
        return None if up is None else up - killed_at

    async def keep_up(self) -> None:
        """Restart any worker that died by itself, as an orchestrator would (until cancelled)."""
        while True:
            await asyncio.sleep(0.2)
            for slot, proc in enumerate(self.procs):
                if slot not in self._killing and proc.poll() is not None:
                    self.deaths += 1
                    self.procs[slot], self.logs[slot] = self._spawn()

    async def stop(self, timeout_s: float = 30.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)


class Broker:
    """The experiment's broker: ``redis-server`` (a private one, restartable) or a URL;
    with ``partitions``, workers reach a Redis broker through a ``PartitionProxy``."""

    def __init__(self, url: str, workdir: Path, partitions: bool) -> None:
        self.server = RedisServer(workdir, persistent=True) if url == "redis-server" else None
        self.url = url
        self.proxy: PartitionProxy | None = None
        self._partitions = partitions

    async def start(self) -> str:
        """Start what is needed; the URL the workers use."""
        if self.server is not None:
            self.server.start()
            self.url = self.server.url
        if not self._partitions:
            return self.url
        parts = urlsplit(self.url)
        if parts.scheme not in ("redis", "rediss") or parts.hostname is None:
            raise ValueError(f"a partition needs a Redis broker over TCP, not {self.url}")
        self.proxy = PartitionProxy(parts.hostname, parts.port or 6379)
        await self.proxy.start()
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        netloc = f"{auth}127.0.0.1:{self.proxy.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    async def restart(self, down_s: float) -> None:
        """Kill the private server (its fsync-always AOF keeps every acknowledged write) and
        start it again ``down_s`` later."""
        if self.server is None:
            raise ValueError('restart_broker needs url = "redis-server" (a broker the runner started)')
        await asyncio.to_thread(self.server.kill)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.server.start)

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
        if self.server is not None:
            await asyncio.to_thread(self.server.kill)
