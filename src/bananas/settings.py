"""One frozen settings object, built once at the edge from defaults, environment and flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from bananas.envvars import LOG_LEVELS, EnvReader, parse_log_level
from bananas.errors import ConfigurationError
from bananas.job import check_routing_key
from bananas.signing import Signer, check_keys, parse_keys

__all__ = [
    "DEFAULT_URL", "LOG_LEVELS", "WORKER_MODES", "DashboardSettings", "JobDefaults", "LogSettings",
    "ObservabilitySettings", "SchedulerSettings", "Settings", "WorkerSettings", "parse_log_level", "parse_priorities",
]  # fmt: skip

#: The embedded broker used when neither BANANAS_URL nor REDIS_URL is set.
DEFAULT_URL = "sqlite:///bananas.db"

#: Seconds in a day, for retention defaults.
DAY_S = 86400.0

WORKER_MODES = ("thin", "default", "specialized", "job-specialized", "scheduler-only")


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs."""

    concurrency: int = 10
    processes: int = 1
    routing_keys: tuple[str, ...] = ("default",)
    mode: str = "default"
    lease_s: float = 10.0  # with renewal every lease/3: a dead worker's job is back within ~10 s
    grace_s: float = 30.0
    max_deliveries: int = 3
    enable_scheduler: bool = True
    #: ``specialized``: inclusive priority bands this worker takes (WORKER_PRIORITIES).
    priorities: tuple[tuple[int, int], ...] = ()
    #: ``job-specialized``: the task names this worker takes (WORKER_JOB_TYPES).
    job_types: tuple[str, ...] = ()
    #: replace this process when a handler blocks its event loop past its timeout
    #: (``bananas.worker.loopwatch``); ``bananas worker`` processes do, embedded workers not.
    watch_loop: bool = False


@dataclass(frozen=True)
class SchedulerSettings:
    """How the scheduler duties (delayed/retry -> ready, expired leases) run.

    Workers' fetches move due jobs and reclaim leases of their own routing keys; the
    leader ticks every ``interval_s`` (SCHEDULER_INTERVAL) for the rest. ``leader_ttl_s``
    (BANANAS_SCHEDULER_LEADER_TTL) is the lock's lifetime, renewed every half of it: a
    dead leader is replaced, and its missed cron ticks fire, within that time.
    """

    interval_s: float = 5.0
    leader_ttl_s: float = 8.0  # renewed every 4 s; a dead leader is replaced within 8 s
    cron_enabled: bool = True  # CRON_SCHEDULER_ENABLED
    cron_interval_s: float = 1.0  # CRON_SCHEDULER_INTERVAL: longest wait between cron passes


@dataclass(frozen=True)
class JobDefaults:
    """Defaults for jobs whose task or submit call does not say otherwise, and how long
    finished job records are kept.

    ``timeout_s`` is JOB_TIMEOUT. ``completed_ttl_s`` (BANANAS_COMPLETED_TTL,
    ``--completed-ttl``) keeps a completed job and its result, 1 hour by default;
    ``failed_ttl_s`` (BANANAS_FAILED_TTL, ``--failed-ttl``) keeps a dead-lettered job in the
    dead-letter queue, 7 days by default. Every broker applies both when it stores the
    outcome, including the scheduler's ``worker_lost`` dead-lettering.
    """

    timeout_s: float = 300.0
    max_retries: int = 3
    completed_ttl_s: float = 3600.0
    failed_ttl_s: float = 7 * DAY_S
    max_job_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class LogSettings:
    """Log tiers 2 (file, LOG_FILE_*) and 3 (Elasticsearch/OpenSearch, LOG_ES_*), and colour.

    Tier 1 (the console) is ``Settings.log_level``/``log_format``. Levels are names.
    """

    color: bool | None = None  # LOG_COLOR; None: colour when stderr is a terminal
    file_enabled: bool = False
    file_path: str = "bananas.log"
    file_max_size_mb: float = 100.0
    file_max_backups: int = 10
    file_max_age_days: float = 30.0
    file_compress: bool = True
    file_level: str = "INFO"
    es_enabled: bool = False
    es_addresses: tuple[str, ...] = ("http://localhost:9200",)
    es_username: str | None = None
    es_password: str | None = None
    es_api_key: str | None = None
    es_cloud_id: str | None = None
    es_index_prefix: str = "bananas-logs"
    es_level: str = "INFO"
    es_flush_bytes: int = 5 * 1024 * 1024
    es_flush_interval_s: float = 10.0
    es_num_workers: int = 1


@dataclass(frozen=True)
class ObservabilitySettings:
    """Metrics, health and tracing.

    ``metrics_port`` (BANANAS_METRICS_PORT, ``--metrics-port``): serve /metrics, /health
    and /ready there. ``tracing`` (BANANAS_TRACING): OpenTelemetry spans; by default on
    when any standard OTEL_* variable is set (and OTEL_SDK_DISABLED is not true). The CLI
    then also sets up an SDK tracer provider unless the app has one
    (``bananas.observability.tracer_provider``).
    """

    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    tracing: bool = False


@dataclass(frozen=True)
class DashboardSettings:
    """Where ``bananas dashboard`` listens: BANANAS_DASHBOARD_HOST, BANANAS_DASHBOARD_PORT
    (``--host``, ``--port``). Port 0 picks a free one."""

    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class SigningSettings:
    """Signed jobs (``bananas.signing``): BANANAS_SIGNING_KEYS, newest first, and
    BANANAS_SIGNING_REQUIRED (default true: with keys, unsigned jobs are refused)."""

    keys: tuple[str, ...] = field(default=(), repr=False)
    required: bool = True

    def signer(self) -> Signer | None:
        """The signer these settings ask for; ``None`` without keys (jobs go unsigned)."""
        return Signer(self.keys, required=self.required) if self.keys else None


@dataclass(frozen=True)
class Settings:
    """Everything configurable, in sections."""

    url: str = DEFAULT_URL
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    jobs: JobDefaults = field(default_factory=JobDefaults)
    log_level: str = "INFO"
    log_format: str = "text"
    logs: LogSettings = field(default_factory=LogSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (tests pass a dict).

        Raises:
            ConfigurationError: a variable has a value that does not parse.
        """
        env = EnvReader(environ)
        url = env.text("BANANAS_URL") or env.text("REDIS_URL") or DEFAULT_URL
        worker = WorkerSettings(
            concurrency=env.integer("WORKER_CONCURRENCY", WorkerSettings.concurrency),
            routing_keys=env.names("WORKER_ROUTING_KEYS") or WorkerSettings.routing_keys,
            mode=env.text("WORKER_MODE") or WorkerSettings.mode,
            enable_scheduler=env.flag("ENABLE_SCHEDULER", True),
            priorities=parse_priorities(env.text("WORKER_PRIORITIES")),
            job_types=env.names("WORKER_JOB_TYPES"),
        )
        scheduler = SchedulerSettings(
            interval_s=env.duration("SCHEDULER_INTERVAL", SchedulerSettings.interval_s),
            leader_ttl_s=env.duration("BANANAS_SCHEDULER_LEADER_TTL", SchedulerSettings.leader_ttl_s),
            cron_enabled=env.flag("CRON_SCHEDULER_ENABLED", True),
            cron_interval_s=env.duration("CRON_SCHEDULER_INTERVAL", SchedulerSettings.cron_interval_s),
        )
        jobs = JobDefaults(
            timeout_s=env.duration("JOB_TIMEOUT", JobDefaults.timeout_s),
            max_retries=env.integer("MAX_RETRIES", JobDefaults.max_retries),
            completed_ttl_s=env.duration("BANANAS_COMPLETED_TTL", JobDefaults.completed_ttl_s),
            failed_ttl_s=env.duration("BANANAS_FAILED_TTL", JobDefaults.failed_ttl_s),
        )
        settings = cls(
            url=url,
            worker=worker,
            scheduler=scheduler,
            jobs=jobs,
            log_level=env.level("LOG_LEVEL", "INFO"),
            log_format=(env.text("LOG_FORMAT") or "text").lower(),
            logs=_log_settings(env),
            observability=_observability_settings(env, environ),
            dashboard=DashboardSettings(
                host=env.text("BANANAS_DASHBOARD_HOST") or DashboardSettings.host,
                port=env.integer("BANANAS_DASHBOARD_PORT", DashboardSettings.port),
            ),
            signing=SigningSettings(
                parse_keys(env.text("BANANAS_SIGNING_KEYS")), env.flag("BANANAS_SIGNING_REQUIRED", True)
            ),
        )
        settings.validate()
        return settings

    def with_worker(self, **changes: object) -> Settings:
        """Return a copy with worker fields replaced (CLI flags override the environment)."""
        given = {k: v for k, v in changes.items() if v is not None}
        settings = dataclasses.replace(self, worker=dataclasses.replace(self.worker, **given))  # type: ignore[arg-type]
        settings.validate()
        return settings

    def with_jobs(self, **changes: object) -> Settings:
        """Return a copy with job defaults replaced (``--completed-ttl``, ``--failed-ttl``);
        ``None`` means not given."""
        given = {k: v for k, v in changes.items() if v is not None}
        settings = dataclasses.replace(self, jobs=dataclasses.replace(self.jobs, **given))  # type: ignore[arg-type]
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
        _check_mode(w)
        s = self.scheduler
        if not 0.5 <= s.leader_ttl_s <= 300:
            raise ConfigurationError(
                f"BANANAS_SCHEDULER_LEADER_TTL must be between 0.5 and 300 seconds, got {s.leader_ttl_s:g} s"
            )
        _check_positive(("SCHEDULER_INTERVAL", s.interval_s), ("CRON_SCHEDULER_INTERVAL", s.cron_interval_s))
        j = self.jobs
        _check_positive(
            ("JOB_TIMEOUT", j.timeout_s),
            ("BANANAS_COMPLETED_TTL", j.completed_ttl_s),
            ("BANANAS_FAILED_TTL", j.failed_ttl_s),
        )
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(f"LOG_FORMAT must be text or json, got {self.log_format!r}")
        _validate_observability(self)
        check_keys(self.signing.keys)


def _check_positive(*durations: tuple[str, float]) -> None:
    for name, seconds in durations:
        if not seconds > 0:
            raise ConfigurationError(f"{name} must be more than 0 seconds, got {seconds:g} s")


def _validate_observability(settings: Settings) -> None:
    lg = settings.logs
    levels = (("LOG_LEVEL", settings.log_level), ("LOG_FILE_LEVEL", lg.file_level), ("LOG_ES_LEVEL", lg.es_level))
    for name, level in levels:
        if level not in LOG_LEVELS:  # from_env normalises (parse_log_level); code passes the names
            raise ConfigurationError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if lg.file_max_size_mb <= 0 or lg.file_max_backups < 0 or lg.file_max_age_days < 0:
        raise ConfigurationError("LOG_FILE_MAX_SIZE_MB must be > 0, LOG_FILE_MAX_BACKUPS and _AGE_DAYS >= 0")
    if lg.es_flush_bytes < 1024 or lg.es_num_workers < 1:
        raise ConfigurationError("LOG_ES_FLUSH_BYTES must be >= 1024 and LOG_ES_NUM_WORKERS >= 1")
    _check_positive(("LOG_ES_FLUSH_INTERVAL", lg.es_flush_interval_s))
    port = settings.observability.metrics_port
    if port is not None and not 0 <= port <= 65535:
        raise ConfigurationError(f"BANANAS_METRICS_PORT must be 0..65535, got {port}")
    if not 0 <= settings.dashboard.port <= 65535:
        raise ConfigurationError(f"BANANAS_DASHBOARD_PORT must be 0..65535, got {settings.dashboard.port}")


def _log_settings(env: EnvReader) -> LogSettings:
    d = LogSettings
    color = env.text("LOG_COLOR")
    return LogSettings(
        color=None if color is None or color.lower() == "auto" else env.flag("LOG_COLOR", False),
        file_enabled=env.flag("LOG_FILE_ENABLED", False),
        file_path=env.text("LOG_FILE_PATH") or d.file_path,
        file_max_size_mb=env.number("LOG_FILE_MAX_SIZE_MB", d.file_max_size_mb),
        file_max_backups=env.integer("LOG_FILE_MAX_BACKUPS", d.file_max_backups),
        file_max_age_days=env.number("LOG_FILE_MAX_AGE_DAYS", d.file_max_age_days),
        file_compress=env.flag("LOG_FILE_COMPRESS", True),
        file_level=env.level("LOG_FILE_LEVEL", d.file_level),
        es_enabled=env.flag("LOG_ES_ENABLED", False),
        es_addresses=env.names("LOG_ES_ADDRESSES") or d.es_addresses,
        es_username=env.text("LOG_ES_USERNAME"),
        es_password=env.text("LOG_ES_PASSWORD"),
        es_api_key=env.text("LOG_ES_API_KEY"),
        es_cloud_id=env.text("LOG_ES_CLOUD_ID"),
        es_index_prefix=env.text("LOG_ES_INDEX_PREFIX") or d.es_index_prefix,
        es_level=env.level("LOG_ES_LEVEL", d.es_level),
        es_flush_bytes=env.integer("LOG_ES_FLUSH_BYTES", d.es_flush_bytes),
        es_flush_interval_s=env.duration("LOG_ES_FLUSH_INTERVAL", d.es_flush_interval_s),
        es_num_workers=env.integer("LOG_ES_NUM_WORKERS", d.es_num_workers),
    )


def _observability_settings(env: EnvReader, environ: Mapping[str, str]) -> ObservabilitySettings:
    port = env.text("BANANAS_METRICS_PORT")
    otel = any(k.startswith("OTEL_") and v.strip() for k, v in environ.items())
    otel = otel and not env.flag("OTEL_SDK_DISABLED", False)
    return ObservabilitySettings(
        metrics_port=None if port is None else env.integer("BANANAS_METRICS_PORT", 0),
        metrics_host=env.text("BANANAS_METRICS_HOST") or ObservabilitySettings.metrics_host,
        tracing=env.flag("BANANAS_TRACING", otel),
    )


#: Priority bands of ``WORKER_PRIORITIES=high,normal,low`` (inclusive; see docs/WORKER_MODES.md).
PRIORITY_BANDS = {"high": (67, 100), "normal": (34, 66), "low": (0, 33)}
#: Concurrency each mode allows (docs/WORKER_MODES.md).
MODE_CONCURRENCY = {"thin": (1, 10), "default": (1, 1000), "specialized": (1, 1000), "job-specialized": (1, 1000)}


def parse_priorities(text: str | None) -> tuple[tuple[int, int], ...]:
    """``"high,normal"``, ``"80-100"`` or ``"90"`` -> inclusive bands, highest first.

    Raises:
        ConfigurationError: a part is not a band name, an int or a range within 0..100.
    """
    if not text:
        return ()
    bands: list[tuple[int, int]] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part in PRIORITY_BANDS:
            bands.append(PRIORITY_BANDS[part])
            continue
        low, _, high = part.partition("-")
        try:
            band = (int(low), int(high or low))
        except ValueError:
            raise ConfigurationError(
                f"WORKER_PRIORITIES: {part!r} is not high, normal, low, an int or a range like 80-100"
            ) from None
        if not 0 <= band[0] <= band[1] <= 100:
            raise ConfigurationError(f"WORKER_PRIORITIES: {part!r} must lie within 0..100, low-high")
        bands.append(band)
    return tuple(sorted(set(bands), key=lambda b: (-b[1], -b[0])))


def _check_mode(w: WorkerSettings) -> None:
    """Each worker mode's rules, with errors naming the settings to change."""
    mode = w.mode
    if w.priorities and mode != "specialized":
        raise ConfigurationError(f"WORKER_PRIORITIES needs WORKER_MODE=specialized (mode is {mode})")
    if w.job_types and mode != "job-specialized":
        raise ConfigurationError(f"WORKER_JOB_TYPES needs WORKER_MODE=job-specialized (mode is {mode})")
    if mode == "specialized" and not w.priorities:
        raise ConfigurationError("WORKER_MODE=specialized needs WORKER_PRIORITIES (e.g. high, or 80-100)")
    if mode == "job-specialized" and not w.job_types:
        raise ConfigurationError("WORKER_MODE=job-specialized needs WORKER_JOB_TYPES (e.g. send_email,resize)")
    if mode == "thin" and not w.enable_scheduler:
        raise ConfigurationError("WORKER_MODE=thin runs its own scheduler: do not set ENABLE_SCHEDULER=false")
    if mode == "thin" and w.processes != 1:
        raise ConfigurationError("WORKER_MODE=thin is one process: drop --processes or use WORKER_MODE=default")
    low, high = MODE_CONCURRENCY.get(mode, (1, 1000))
    if mode != "scheduler-only" and not low <= w.concurrency <= high:
        raise ConfigurationError(f"WORKER_MODE={mode} allows WORKER_CONCURRENCY {low}..{high}, got {w.concurrency}")
