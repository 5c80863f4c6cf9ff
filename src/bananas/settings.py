"""One frozen settings object, built once at the edge from defaults, environment and flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from bananas.errors import ConfigurationError
from bananas.job import check_routing_key

#: The embedded broker used when neither BANANAS_URL nor REDIS_URL is set.
DEFAULT_URL = "sqlite:///bananas.db"

WORKER_MODES = ("thin", "default", "specialized", "job-specialized", "scheduler-only")


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs."""

    concurrency: int = 10
    processes: int = 1
    routing_keys: tuple[str, ...] = ("default",)
    mode: str = "default"
    lease_s: float = 30.0
    grace_s: float = 30.0
    max_deliveries: int = 3
    enable_scheduler: bool = True


@dataclass(frozen=True)
class SchedulerSettings:
    """How the scheduler duties (delayed/retry -> ready, expired leases) run.

    The leader ticks when something falls due or a submit wakes it; ``interval_s``
    (SCHEDULER_INTERVAL) is only the longest it sleeps between ticks otherwise.
    ``leader_ttl_s`` (BANANAS_SCHEDULER_LEADER_TTL) bounds failover after a leader dies.
    """

    interval_s: float = 5.0
    leader_ttl_s: float = 10.0


@dataclass(frozen=True)
class JobDefaults:
    """Defaults for jobs whose task or submit call does not say otherwise."""

    timeout_s: float = 300.0
    max_retries: int = 3
    completed_ttl_s: float = 3600.0
    failed_ttl_s: float = 86400.0
    max_job_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything configurable, in sections."""

    url: str = DEFAULT_URL
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    jobs: JobDefaults = field(default_factory=JobDefaults)
    log_level: str = "INFO"
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (tests pass a dict).

        Raises:
            ConfigurationError: a variable has a value that does not parse.
        """
        env = _Env(environ)
        url = env.text("BANANAS_URL") or env.text("REDIS_URL") or DEFAULT_URL
        worker = WorkerSettings(
            concurrency=env.integer("WORKER_CONCURRENCY", WorkerSettings.concurrency),
            routing_keys=env.names("WORKER_ROUTING_KEYS") or WorkerSettings.routing_keys,
            mode=env.text("WORKER_MODE") or WorkerSettings.mode,
            enable_scheduler=env.flag("ENABLE_SCHEDULER", True),
        )
        scheduler = SchedulerSettings(
            interval_s=env.number("SCHEDULER_INTERVAL", SchedulerSettings.interval_s),
            leader_ttl_s=env.number("BANANAS_SCHEDULER_LEADER_TTL", SchedulerSettings.leader_ttl_s),
        )
        jobs = JobDefaults(
            timeout_s=env.number("JOB_TIMEOUT", JobDefaults.timeout_s),
            max_retries=env.integer("MAX_RETRIES", JobDefaults.max_retries),
        )
        settings = cls(
            url=url,
            worker=worker,
            scheduler=scheduler,
            jobs=jobs,
            log_level=(env.text("LOG_LEVEL") or "INFO").upper(),
            log_format=(env.text("LOG_FORMAT") or "text").lower(),
        )
        settings.validate()
        return settings

    def with_worker(self, **changes: object) -> Settings:
        """Return a copy with worker fields replaced (CLI flags override the environment)."""
        given = {k: v for k, v in changes.items() if v is not None}
        settings = dataclasses.replace(self, worker=dataclasses.replace(self.worker, **given))  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check the combination of values.

        Raises:
            ConfigurationError: naming the offending setting.
        """
        w = self.worker
        if w.concurrency < 1:
            raise ConfigurationError(f"WORKER_CONCURRENCY must be >= 1, got {w.concurrency}")
        if w.processes < 1:
            raise ConfigurationError(f"--processes must be >= 1, got {w.processes}")
        if w.mode not in WORKER_MODES:
            raise ConfigurationError(f"WORKER_MODE {w.mode!r} is not one of {', '.join(WORKER_MODES)}")
        if w.lease_s <= 0 or w.grace_s < 0:
            raise ConfigurationError("--lease must be > 0 and --grace >= 0")
        if w.max_deliveries < 1:
            raise ConfigurationError("max_deliveries must be >= 1")
        for key in w.routing_keys:
            check_routing_key(key)
        if not 0.5 <= self.scheduler.leader_ttl_s <= 300:
            raise ConfigurationError("BANANAS_SCHEDULER_LEADER_TTL must be between 0.5 and 300 seconds")
        if self.scheduler.interval_s <= 0:
            raise ConfigurationError("SCHEDULER_INTERVAL must be > 0")
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(f"LOG_FORMAT must be text or json, got {self.log_format!r}")


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value.strip() if value and value.strip() else None

    def integer(self, name: str, default: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {value!r}") from None

    def number(self, name: str, default: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {value!r}") from None

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")

    def names(self, name: str) -> tuple[str, ...]:
        value = self.text(name)
        if value is None:
            return ()
        return tuple(k.strip() for k in value.split(",") if k.strip())
