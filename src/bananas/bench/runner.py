"""Run the selected scenarios against a throwaway redis-server and collect one result dict."""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bananas import Client, __version__
from bananas.bench.drain import drain, run_drain, run_idle_and_memory
from bananas.bench.enqueue import run_enqueue
from bananas.bench.io import run_io
from bananas.bench.latency import run_depth, run_latency
from bananas.bench.limit import run_limit
from bananas.bench.payloads import run_payloads
from bananas.bench.signing import run_signing
from bananas.bench.workflows import run_workflows
from bananas.testing import RedisServer

#: Every scenario, in the order they run.
SCENARIOS = (
    "limit", "enqueue", "drain", "io", "latency", "idle", "memory", "payloads", "depth", "signing", "workflows",
    "sqlite",
)  # fmt: skip


@dataclass(frozen=True)
class BenchConfig:
    """What to run and how big.

    ``quick`` shrinks everything to a smoke run of a few seconds per scenario (numbers
    from it mean nothing).
    """

    scenarios: tuple[str, ...] = SCENARIOS
    jobs: int = 20_000
    latency_rates: tuple[float, ...] = (200.0, 2000.0)
    latency_s: float = 10.0
    idle_s: float = 10.0
    memory_jobs: int = 100_000
    depths: tuple[int, ...] = (100, 10_000, 1_000_000)
    depth_measured: int = 2000
    #: rounds of the ``io`` scenario (ceiling, then Bananas); medians are reported.
    rounds: int = 3
    quick: bool = False
    progress: Callable[[str], None] = field(default=lambda _: None)

    @classmethod
    def quick_config(cls, scenarios: tuple[str, ...] = SCENARIOS, jobs: int = 300) -> BenchConfig:
        """Tiny sizes for a smoke test."""
        return cls(scenarios=scenarios, jobs=jobs, latency_rates=(200.0,), latency_s=0.5, idle_s=1.0,
                   memory_jobs=jobs, depths=(100, 1000), depth_measured=100, rounds=1, quick=True)  # fmt: skip


def environment() -> dict[str, Any]:
    """Machine and versions, recorded with every run."""
    import hiredis
    import msgspec

    return {"bananas": __version__, "python": platform.python_version(), "redis_py": redis.__version__,
            "hiredis": getattr(hiredis, "__version__", "?"), "msgspec": msgspec.__version__,
            "machine": platform.machine(), "cpus": _cpus(), "cpu_model": _cpu_model(),
            "platform": platform.platform(), "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}  # fmt: skip


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(config: BenchConfig) -> dict[str, Any]:
    """Run every selected scenario; return ``{"environment": ..., scenario: {...}}``."""
    results: dict[str, Any] = {"environment": environment()}
    with tempfile.TemporaryDirectory(prefix="bananas-bench-") as tmp:
        redis_scenarios = [s for s in config.scenarios if s != "sqlite"]
        if redis_scenarios:
            server = RedisServer(Path(tmp))
            server.start()
            try:
                info = server.client().info("server")
                results["environment"]["redis_server"] = info.get("redis_version", "?")
                _run_redis(config, server, redis_scenarios, results)
            finally:
                server.kill()
        if "sqlite" in config.scenarios:
            config.progress("sqlite")
            try:
                results["sqlite"] = _run_sqlite(Path(tmp), config.jobs)
            except Exception as exc:  # noqa: BLE001 - reported like any other result
                results["sqlite"] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def _run_redis(config: BenchConfig, server: RedisServer, scenarios: list[str], results: dict[str, Any]) -> None:
    url = server.url
    flusher = server.client()
    flush = flusher.flushall
    with Client(url) as client:
        for name in scenarios:
            config.progress(name)
            flush()
            started = time.perf_counter()
            try:
                if name in ("idle", "memory"):
                    if "idle" not in results:
                        results.update(run_idle_and_memory(client, url, config.idle_s, config.memory_jobs))
                else:
                    results[name] = _scenario(name, config, client, url, flush)
            except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results.setdefault("seconds", {})[name] = time.perf_counter() - started
    flusher.close()


def _scenario(name: str, config: BenchConfig, client: Client, url: str, flush: Callable[[], Any]) -> dict[str, Any]:
    if name == "limit":
        return run_limit(url, config.jobs)
    if name == "enqueue":
        return run_enqueue(client, url, config.jobs, flush)
    if name == "drain":
        return run_drain(client, url, config.jobs, flush, config.quick)
    if name == "io":
        return run_io(client, url, config.jobs, flush, config.rounds)
    if name == "latency":
        return run_latency(client, url, config.latency_rates, config.latency_s)
    if name == "signing":
        return run_signing(url, config.jobs, flush, config.rounds)
    if name == "payloads":
        return run_payloads(client, url, config.jobs, flush)
    if name == "workflows":
        return run_workflows(client, url, config.jobs, flush, config.quick, config.rounds)
    if name == "depth":
        return run_depth(client, url, config.depths, config.depth_measured, flush)
    raise ValueError(f"unknown scenario {name!r}: use one of {', '.join(SCENARIOS)}")


def _run_sqlite(tmp: Path, jobs: int) -> dict[str, Any]:
    url = f"sqlite:///{tmp}/bench.db"
    with Client(url) as client:
        return {"drain_one_process_per_s": drain(client, url, jobs, ("1 process x 100", 100, None))}
