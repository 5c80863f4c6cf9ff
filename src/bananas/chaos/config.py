"""``ChaosConfig``: which faults to inject, how often, and in which environments.

Written in code or in a TOML file named by ``BANANAS_CHAOS``::

    environments = ["staging", "test"]   # BANANAS_ENV must be one of these
    seed = 7                              # optional: the same faults on every run
    failure_rate = 0.05                   # a job attempt raises InjectedFault
    timeout_rate = 0.01                   # ... ends as a timeout
    crash_rate = 0.001                    # ... kills its worker process (SIGKILL)
    corruption_rate = 0.001               # a dequeued body is cut short (dead-lettered malformed)
    broker_error_rate = 0.01              # a broker call fails as if the connection dropped
    [latency]                             # a job attempt waits first
    rate = 0.1
    min = "100ms"
    max = "5s"
    [partition]                           # the process loses its broker for a while
    rate = 0.0001                         # per broker call
    duration = "30s"
    [memory]                              # a job attempt holds this much more memory
    rate = 0.001
    mib = 512
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bananas.durations import parse_duration
from bananas.errors import ConfigurationError

#: The environment variable naming the chaos file, and the one naming the environment.
CHAOS_ENV, ENV_ENV = "BANANAS_CHAOS", "BANANAS_ENV"


class ChaosRefused(ConfigurationError):
    """Chaos is configured but ``BANANAS_ENV`` is not one of its environments."""


@dataclass(frozen=True, slots=True)
class Latency:
    """A share ``rate`` of job attempts waits between ``min_s`` and ``max_s`` first."""

    rate: float = 0.0
    min_s: float = 0.1
    max_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Partition:
    """With probability ``rate`` per broker call, every broker call of this process fails
    for ``duration_s`` (the process is cut off from its broker)."""

    rate: float = 0.0
    duration_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Memory:
    """A share ``rate`` of job attempts holds ``mib`` MiB more while it runs."""

    rate: float = 0.0
    mib: int = 512


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """Faults to inject (every rate is a probability, 0..1) and where that is allowed.

    Args:
        environments: the values of ``BANANAS_ENV`` in which chaos may run; anywhere else
            (unset included) a worker or client given this configuration refuses to start.
        seed: seeds the random choices (None: a fresh seed per process).
    """

    environments: tuple[str, ...]
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    crash_rate: float = 0.0
    corruption_rate: float = 0.0
    broker_error_rate: float = 0.0
    latency: Latency = field(default_factory=Latency)
    partition: Partition = field(default_factory=Partition)
    memory: Memory = field(default_factory=Memory)
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.environments or not all(isinstance(e, str) and e for e in self.environments):
            raise ConfigurationError("chaos needs the environments it may run in (environments = ['staging'])")
        for name, value in self.rates().items():
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0 and math.isfinite(value)):
                raise ConfigurationError(f"chaos {name} must be a probability between 0 and 1, not {value!r}")
        if not 0 <= self.latency.min_s <= self.latency.max_s:
            raise ConfigurationError("chaos latency needs 0 <= min <= max")
        if self.partition.duration_s <= 0 or self.memory.mib <= 0:
            raise ConfigurationError("chaos partition duration and memory mib must be positive")

    def rates(self) -> dict[str, float]:
        """Every rate by its name in the file (``latency.rate`` for the tables')."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith("_rate")}
        return {**flat, "latency.rate": self.latency.rate, "partition.rate": self.partition.rate,
                "memory.rate": self.memory.rate}  # fmt: skip

    def check(self, environ: Mapping[str, str] | None = None) -> None:
        """Refuse loudly unless ``BANANAS_ENV`` names one of the allowed environments.

        Raises:
            ChaosRefused: it does not.
        """
        env = (os.environ if environ is None else environ).get(ENV_ENV, "")
        if env not in self.environments:
            shown = repr(env) if env else "unset"
            raise ChaosRefused(
                f"chaos is configured for {', '.join(self.environments)} but {ENV_ENV} is {shown}: "
                f"refusing to inject faults here (set {ENV_ENV} to one of them, or remove the chaos configuration)"
            )

    @classmethod
    def from_toml(cls, text: str, source: str = "chaos file") -> ChaosConfig:
        """Parse the TOML form (see the module's docstring).

        Raises:
            ConfigurationError: not TOML, an unknown key, or a bad value.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{source} is not valid TOML: {exc}") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "chaos configuration") -> ChaosConfig:
        """Build from the TOML form's table (durations as ``"30s"`` or seconds)."""
        data = dict(data)
        tables = {"latency": (Latency, {"rate": "rate", "min": "min_s", "max": "max_s"}),
                  "partition": (Partition, {"rate": "rate", "duration": "duration_s"}),
                  "memory": (Memory, {"rate": "rate", "mib": "mib"})}  # fmt: skip
        kwargs: dict[str, Any] = {}
        for key, (kind, names) in tables.items():
            if key in data:
                kwargs[key] = kind(**_table(data.pop(key), names, f"{source} [{key}]"))
        known = {f.name for f in fields(cls)} - set(tables)
        if unknown := set(data) - known:
            raise ConfigurationError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
        kwargs.update(data)
        kwargs["environments"] = tuple(kwargs.get("environments", ()))
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None


def _table(raw: object, names: Mapping[str, str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where} must be a table")
    if unknown := set(raw) - set(names):
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        seconds = names[key].endswith("_s")
        out[names[key]] = (parse_duration(value, f"{where} {key}") if isinstance(value, str) else float(value)
                           ) if seconds else value  # fmt: skip
    return out


def from_env(environ: Mapping[str, str] | None = None) -> ChaosConfig | None:
    """The configuration in the file ``BANANAS_CHAOS`` names, checked against
    ``BANANAS_ENV``; None when the variable is unset or empty.

    Raises:
        ConfigurationError: the file is missing or wrong.
        ChaosRefused: ``BANANAS_ENV`` is not one of its environments.
    """
    env = os.environ if environ is None else environ
    path = env.get(CHAOS_ENV, "")
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"{CHAOS_ENV}={path}: cannot read it ({exc.strerror})") from None
    config = ChaosConfig.from_toml(text, f"{CHAOS_ENV}={path}")
    config.check(env)
    return config
