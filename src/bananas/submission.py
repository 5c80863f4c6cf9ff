"""Building jobs: validate a submit, apply the defaults, encode it. No I/O.

Every path that creates jobs goes through ``JobBuilder``: ``Client``/``AsyncClient``
submits, cron ticks fired by the scheduler, and (next) workflow nodes.

Precedence of a job's options: the submit's own > the task declared in this process
(``@app.task``) > the task catalogue (what workers published) > the running worker's
settings (``JOB_TIMEOUT``, ``MAX_RETRIES``: a job that carries no timeout or retries of
its own gets them there) > the built-in defaults (routing key ``default``, priority 50).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bananas import wire
from bananas.catalogue import Catalogue, TaskInfo
from bananas.catalogue import parameters as catalogue_parameters
from bananas.durations import Duration
from bananas.errors import ConfigurationError, PayloadError
from bananas.job import (
    UNIQUE_MODES,
    Job,
    JobStatus,
    Priority,
    UniqueLock,
    WorkflowLink,
    check_job_name,
    check_routing_key,
    new_id,
    parse_priority,
    to_seconds,
)
from bananas.middleware import MiddlewareChain
from bananas.registry import TaskDefinition
from bananas.settings import Settings

logger = logging.getLogger(__name__)

_NORMAL = int(Priority.NORMAL)
#: How long a unique key is held at most when neither the submit nor the task says.
DEFAULT_UNIQUE_TTL_S = 86400.0
#: The longest unique key.
MAX_UNIQUE_KEY_CHARS = 512


@dataclass
class JobSpec:
    """One job to submit; the fields mirror ``submit``'s arguments."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: str | int | Priority | None = None
    routing_key: str | None = None
    delay: Duration | None = None
    at: datetime | None = None
    description: str = ""
    max_retries: int | None = None
    timeout: Duration | None = None
    headers: Mapping[str, str] | None = None
    expires: Duration | datetime | None = None
    unique_key: str | None = None
    unique_ttl: Duration | None = None
    unique_mode: str | None = None


class JobBuilder:
    """Turns ``JobSpec``s into encoded jobs.

    Args:
        settings: the size limit.
        tasks: the tasks this process declared (their payloads are checked here).
        middleware: ``before_submit``/``after_submit`` hooks.
        catalogue: the published tasks, for names this process does not declare.
    """

    def __init__(
        self,
        settings: Settings,
        tasks: Mapping[str, TaskDefinition] | None = None,
        middleware: MiddlewareChain | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.settings = settings
        self.tasks: Mapping[str, TaskDefinition] = tasks if tasks is not None else {}
        self.middleware = middleware
        self.catalogue = catalogue if catalogue is not None else Catalogue()
        self._signer = settings.signing.signer()  # BANANAS_SIGNING_KEYS: sign every job built
        # Names and routing keys already found legal (the regex costs more than the lookup).
        self._valid_names = _BoundedSet()
        self._valid_routing_keys = _BoundedSet()

    def build(self, spec: JobSpec, workflow: WorkflowLink | None = None) -> tuple[Job, bytes]:
        """Validate one job and encode it; ``workflow`` makes it a workflow's node, whose
        input parameters are left out of the payload check (they are filled in later).

        Raises:
            PayloadError, PayloadTooLarge: the payload does not fit or is too large.
            ConfigurationError: bad name, priority, routing key, retries, timeout, delay or time.
        """
        name = spec.name
        if type(name) is not str or name not in self._valid_names:
            self._valid_names.add(check_job_name(name))
        payload = spec.payload
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise PayloadError(f"payload must be a JSON object (a dict), got {type(payload).__name__}")
        payload = dict(payload)
        task = self._checked_task(name, payload, workflow)
        now = time.time()
        scheduled_for = None if spec.delay is None and spec.at is None else run_at(now, spec.delay, spec.at)
        routing_key = spec.routing_key or (task.routing_key if task else "default")
        if type(routing_key) is not str or routing_key not in self._valid_routing_keys:
            self._valid_routing_keys.add(check_routing_key(routing_key))
        timeout_s = _timeout(spec.timeout)
        max_retries = _max_retries(spec.max_retries)
        if task is not None:
            timeout_s = task.timeout_s if timeout_s is None else timeout_s
            max_retries = task.max_retries if max_retries is None else max_retries
        priority = spec.priority if spec.priority is not None else self._task_priority(name, task, payload, workflow)
        job = Job(
            id=new_id(),
            name=name,
            payload=payload,
            priority=_NORMAL if priority is None else parse_priority(priority),
            routing_key=routing_key,
            status=JobStatus.SCHEDULED if scheduled_for else JobStatus.PENDING,
            max_retries=max_retries,
            timeout=timeout_s,
            created_at=now,
            scheduled_for=scheduled_for,
            description=spec.description,
            headers=dict(spec.headers) if spec.headers else {},
            workflow=workflow,
            expires_at=None if spec.expires is None else expiry(now, spec.expires, scheduled_for),
        )
        if self.middleware is not None:
            self.middleware.before_submit(job)
        body = wire.encode_job(job, self.settings.jobs.max_job_bytes)
        return job, body if self._signer is None else self._signer.sign(body)

    @staticmethod
    def _task_priority(
        name: str, task: TaskDefinition | TaskInfo | None, payload: dict[str, Any], workflow: WorkflowLink | None
    ) -> int | None:
        """The task's ``priority_fn(payload)`` (declared in this process; not for a workflow
        node whose inputs come later), else its priority.

        Raises:
            PayloadError: ``priority_fn`` raised or returned no priority.
        """
        fn = getattr(task, "priority_fn", None)
        if fn is None or (workflow is not None and workflow.inputs):
            return task.priority if task is not None else None
        try:
            return parse_priority(fn(payload))
        except ConfigurationError as exc:
            raise PayloadError(f"task {name!r}: priority_fn returned no priority: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the user's function: a clear error, not a crash
            raise PayloadError(f"task {name!r}: its priority_fn raised {exc!r}") from None

    def unique_lock(self, spec: JobSpec, job: Job) -> UniqueLock | None:
        """The unique key a built job carries: the submit's ``unique_key``, else its task's
        ``unique_key(payload)`` (tasks declared in this process), with the TTL and mode of
        the submit, else the task, else ``DEFAULT_UNIQUE_TTL_S`` / ``until_done``.

        Raises:
            ConfigurationError: a bad key, TTL or mode, or a TTL/mode without a key.
            PayloadError: the task's ``unique_key`` function raised.
        """
        task = self.tasks.get(spec.name)
        key = spec.unique_key
        if key is None and task is not None and task.unique_key is not None:
            try:
                key = task.unique_key(job.payload)
            except Exception as exc:  # noqa: BLE001 - the user's function: a clear error, not a crash
                raise PayloadError(f"task {spec.name!r}: its unique_key function raised {exc!r}") from None
        if key is None:
            if spec.unique_ttl is not None or spec.unique_mode is not None:
                raise ConfigurationError("unique_ttl and unique_mode need a unique_key")
            return None
        if type(key) is not str or not 0 < len(key) <= MAX_UNIQUE_KEY_CHARS:
            raise ConfigurationError(
                f"unique_key must be a string of 1 to {MAX_UNIQUE_KEY_CHARS} characters, got {key!r}"
            )
        given = spec.unique_ttl if spec.unique_ttl is not None else task.unique_ttl if task is not None else None
        ttl = to_seconds(given, "unique_ttl")
        if ttl is not None and ttl <= 0:
            raise ConfigurationError(f"unique_ttl must be > 0 seconds, got {ttl:g}")
        mode = spec.unique_mode or (task.unique_mode if task is not None else None) or UNIQUE_MODES[0]
        if mode not in UNIQUE_MODES:
            raise ConfigurationError(f"unique_mode must be one of {', '.join(UNIQUE_MODES)}, got {mode!r}")
        return UniqueLock(key, DEFAULT_UNIQUE_TTL_S if ttl is None else ttl, mode)

    def _checked_task(
        self, name: str, payload: dict[str, Any], workflow: WorkflowLink | None
    ) -> TaskDefinition | TaskInfo | None:
        """The task declared here, else the catalogue's, after checking the payload fits it."""
        local = self.tasks.get(name)
        later = frozenset(i.param for i in workflow.inputs) if workflow is not None else None
        if local is not None:
            if later:
                local.spec.check_known(payload, later)
            else:
                local.spec.check(payload)
            return local
        info = self.catalogue.get(name)
        if info is not None:
            self.catalogue.check(info, payload, later or frozenset())
        return info

    def parameters(self, name: str) -> list[str] | None:
        """The payload parameters of a task in the handler's order; None when neither
        this process nor the catalogue knows the task."""
        local = self.tasks.get(name)
        if local is not None:
            return local.spec.parameters
        info = self.catalogue.get(name)
        return None if info is None else catalogue_parameters(info.payload_schema)

    def needs_catalogue(self, names: Iterable[str]) -> bool:
        """Whether any of these tasks is not declared in this process (so the catalogue,
        not the local task, gives its defaults)."""
        return any(name not in self.tasks for name in names)

    def submitted(self, built: Sequence[tuple[Job, bytes]]) -> None:
        """After the broker stored ``built``: middleware, and a DEBUG line per job."""
        if self.middleware is not None:
            for job, _ in built:
                self.middleware.after_submit(job)
        if logger.isEnabledFor(logging.DEBUG):
            for job, _ in built:
                logger.debug(
                    "job %s submitted (%s)", job.id, job.status.value,
                    extra={"component": "client", "job_id": job.id, "job_name": job.name, "priority": job.priority,
                           "routing_key": job.routing_key},
                )  # fmt: skip


def _timeout(value: Duration | None) -> float | None:
    if value is None:
        return None
    seconds = to_seconds(value, "timeout")
    if seconds is None or seconds <= 0:
        raise ConfigurationError(f"timeout must be > 0, got {seconds}")
    return seconds


def _max_retries(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise ConfigurationError(f"max_retries must be >= 0, got {value}")
    return value


def run_at(now: float, delay: Duration | None, at: datetime | None) -> float | None:
    """The unix time a job given ``delay`` or ``at`` becomes due (None: now).

    Raises:
        ConfigurationError: both given, a naive datetime, or a negative delay.
    """
    if delay is not None and at is not None:
        raise ConfigurationError("give delay or at, not both")
    if at is not None:
        if at.tzinfo is None:
            raise ConfigurationError("at must be a timezone-aware datetime")
        ts = at.timestamp()
        return ts if ts > now else None
    seconds = to_seconds(delay, "delay")
    if seconds is None or seconds == 0:
        return None
    if seconds < 0:
        raise ConfigurationError(f"delay must be >= 0 seconds, got {seconds:g}")
    return now + seconds


def expiry(now: float, expires: Duration | datetime, due: float | None) -> float:
    """The unix time a job given ``expires`` (seconds from now, or an aware datetime)
    expires.

    Raises:
        ConfigurationError: not in the future, a naive datetime, or not after the job is due.
    """
    if isinstance(expires, datetime):
        if expires.tzinfo is None:
            raise ConfigurationError("expires must be a timezone-aware datetime")
        at = expires.timestamp()
    else:
        seconds = to_seconds(expires, "expires")
        at = now + (seconds or 0.0)
    if at <= (due or now):
        raise ConfigurationError("expires must be later than when the job is due (now, or its delay/at)")
    return at


class _BoundedSet(set[str]):
    """A set that forgets everything when it would pass ``limit`` entries."""

    limit = 10_000

    def add(self, value: str) -> None:
        if len(self) >= self.limit:
            self.clear()
        super().add(value)
