"""An experiment as written in its TOML file (docs/CHAOS.md has every key)::

name = "kill-workers"
url = "redis-server"        # a private redis-server the runner starts (restartable),
                            # or a broker URL (redis://..., sqlite:///...)
duration = "20s"            # how long the workload is submitted and faults injected
settle = "60s"              # then how long the jobs may take to finish
[workload]
jobs = 2000                 # submitted evenly over the duration
sleep = ["50ms", "500ms"]   # each job sleeps a random time in this range
async_share = 0.5           # the rest are sync handlers
poison = 0                  # jobs that kill their process
[workers]
start = 8                   # worker processes the runner starts (0: use running ones)
concurrency = 4
args = []                   # more `bananas worker` options
chaos = ""                  # a BANANAS_CHAOS file for them (BANANAS_ENV=chaos)
[[faults]]
kind = "kill_worker"        # SIGKILL a random worker every `every`, restart it
every = "2s"
[[faults]]
kind = "partition"          # cut the workers off the broker (a TCP proxy), for `duration`
every = "10s"
duration = "3s"
[[faults]]
kind = "restart_broker"     # stop the private redis-server at `at`, start it `down` later
at = "8s"
down = "1s"
[checks]
max_lost = 0                # jobs neither completed nor dead-lettered
max_dead = 0
min_success_rate = 1.0      # completed / submitted
duplicates_have_later_delivery = true
max_settle = "60s"          # every job terminal within this after the last fault
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bananas.durations import parse_duration
from bananas.errors import ConfigurationError

FAULT_KINDS = ("kill_worker", "partition", "restart_broker")


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    every_s: float | None = None
    at_s: float | None = None
    duration_s: float = 3.0  # a partition's length; a broker restart's downtime


@dataclass(frozen=True, slots=True)
class Checks:
    max_lost: int = 0
    max_dead: int | None = 0
    min_success_rate: float = 1.0
    duplicates_have_later_delivery: bool = True
    max_settle_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    url: str = "redis-server"
    duration_s: float = 20.0
    settle_s: float = 60.0
    jobs: int = 1000
    sleep_s: tuple[float, float] = (0.05, 0.5)
    async_share: float = 0.5
    poison: int = 0
    workers: int = 4
    concurrency: int = 4
    worker_args: tuple[str, ...] = ()
    worker_chaos: str = ""
    ledger: str = ""
    faults: tuple[Fault, ...] = ()
    checks: Checks = field(default_factory=Checks)

    @property
    def rate(self) -> float:
        """Jobs submitted per second."""
        return self.jobs / self.duration_s


def _seconds(value: Any, what: str) -> float:
    seconds = parse_duration(value, what) if isinstance(value, str) else float(value)
    if seconds < 0:
        raise ConfigurationError(f"{what} must not be negative")
    return seconds


def _as(kind: Callable[[Any], Any]) -> Callable[[Any, str], Any]:
    """A converter of ``_take`` that ignores where the value is."""
    return lambda value, _where: kind(value)


_RAW = _as(lambda value: value)


def _take(table: dict[str, Any], where: str, **kinds: Any) -> dict[str, Any]:
    """Pop the known keys of ``table`` (converted by ``kinds``); refuse any other."""
    if unknown := set(table) - set(kinds):
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return {k: convert(table[k], f"{where} {k}") for k, convert in kinds.items() if k in table}


def _fault(raw: dict[str, Any], n: int) -> Fault:
    where = f"faults[{n}]"
    got = _take(dict(raw), where, kind=_as(str), every=_seconds, at=_seconds, duration=_seconds, down=_seconds)
    kind = got.get("kind", "")
    if kind not in FAULT_KINDS:
        raise ConfigurationError(f"{where}: kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    if ("every" in got) == ("at" in got):
        raise ConfigurationError(f"{where}: give either every or at")
    length = got.get("duration", got.get("down", 3.0 if kind == "partition" else 1.0))
    return Fault(kind, got.get("every"), got.get("at"), length)


def parse(text: str, source: str = "experiment") -> Experiment:
    """Parse an experiment file.

    Raises:
        ConfigurationError: not TOML, an unknown key or a bad value.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source} is not valid TOML: {exc}") from None
    top = _take(data, source, name=_as(str), url=_as(str), duration=_seconds, settle=_seconds,
                workload=_RAW, workers=_RAW, faults=_RAW, checks=_RAW)  # fmt: skip
    load = _take(dict(top.get("workload", {})), f"{source} [workload]", jobs=_as(int),
                 sleep=lambda v, w: tuple(_seconds(x, w) for x in v), async_share=_as(float),
                 poison=_as(int))  # fmt: skip
    procs = _take(dict(top.get("workers", {})), f"{source} [workers]", start=_as(int),
                  concurrency=_as(int), args=_as(lambda v: tuple(str(a) for a in v)),
                  chaos=_as(str), ledger=_as(str))  # fmt: skip
    checks = _take(dict(top.get("checks", {})), f"{source} [checks]", max_lost=_as(int),
                   max_dead=_as(int), min_success_rate=_as(float),
                   duplicates_have_later_delivery=_as(bool), max_settle=_seconds)  # fmt: skip
    if "max_settle" in checks:
        checks["max_settle_s"] = checks.pop("max_settle")
    exp = Experiment(
        name=top.get("name", "experiment"), url=top.get("url", "redis-server"),
        duration_s=top.get("duration", 20.0), settle_s=top.get("settle", 60.0),
        jobs=load.get("jobs", 1000), sleep_s=load.get("sleep", (0.05, 0.5)), async_share=load.get("async_share", 0.5),
        poison=load.get("poison", 0), workers=procs.get("start", 4), concurrency=procs.get("concurrency", 4),
        worker_args=procs.get("args", ()), worker_chaos=procs.get("chaos", ""), ledger=procs.get("ledger", ""),
        faults=tuple(_fault(f, i) for i, f in enumerate(top.get("faults", []))), checks=Checks(**checks),
    )  # fmt: skip
    if exp.duration_s <= 0 or exp.jobs < 0 or len(exp.sleep_s) != 2 or exp.sleep_s[0] > exp.sleep_s[1]:
        raise ConfigurationError(f"{source}: needs duration > 0, jobs >= 0 and sleep = [min, max]")
    kinds = {f.kind for f in exp.faults}
    if "restart_broker" in kinds and exp.url != "redis-server":
        raise ConfigurationError(f'{source}: restart_broker needs url = "redis-server" (a broker the runner starts)')
    if "partition" in kinds and not (exp.url == "redis-server" or exp.url.startswith(("redis://", "rediss://"))):
        raise ConfigurationError(f"{source}: a partition needs a Redis broker over TCP, not {exp.url}")
    if exp.workers == 0 and not exp.ledger:
        raise ConfigurationError(f"{source}: with [workers] start = 0, name the running workers' ledger")
    if exp.workers == 0 and any(f.kind in ("kill_worker", "partition") for f in exp.faults):
        raise ConfigurationError(f"{source}: kill_worker and partition need workers the runner starts (start > 0)")
    return exp
