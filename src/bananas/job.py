"""The job data model: plain data, no I/O."""

from __future__ import annotations

import enum
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from bananas.durations import Duration, parse_duration
from bananas.errors import ConfigurationError

#: Version of the job wire format (the ``v`` field).
WIRE_VERSION = 1

#: Routing keys: letters, digits and ``_ - . :``, 1 to 64 characters. No braces (they are
#: the Redis hash-tag delimiters) and no whitespace.
ROUTING_KEY_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")

#: Job names follow the same rule as Python dotted names, loosely.
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,200}$")


class JobStatus(str, enum.Enum):
    """Where a job is in its life; the values are the wire strings."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job will never change status again."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
TERMINAL_STATUSES: frozenset[str] = frozenset(s.value for s in _TERMINAL)


class Priority(enum.IntEnum):
    """Named points on the 0..100 priority score; higher runs first."""

    LOW = 10
    NORMAL = 50
    HIGH = 90


class DeadReason(str, enum.Enum):
    """Why a job was dead-lettered (the ``reason`` field of a failed job)."""

    MAX_RETRIES = "max_retries"
    PERMANENT = "permanent_error"
    PAYLOAD = "invalid_payload"
    NO_HANDLER = "no_handler"
    WORKER_LOST = "worker_lost"
    MALFORMED = "malformed"
    RESULT_SERIALIZATION = "result_serialization"
    SIGNATURE_INVALID = "signature_invalid"


def parse_priority(value: str | int | Priority | None) -> int:
    """Turn ``"high"``, ``Priority.HIGH`` or an int 0..100 into the int score.

    Raises:
        ConfigurationError: unknown name, or an int outside 0..100.
    """
    if value is None:
        return int(Priority.NORMAL)
    if isinstance(value, bool):
        raise ConfigurationError(f"priority must be a name or an int 0..100, not {value!r}")
    if isinstance(value, int):
        if 0 <= value <= 100:
            return int(value)
        raise ConfigurationError(f"priority {value} is outside 0..100")
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_priority(int(text))
        try:
            return int(Priority[text.upper()])
        except KeyError:
            names = ", ".join(p.name.lower() for p in Priority)
            raise ConfigurationError(f"unknown priority {value!r}: use one of {names} or an int 0..100") from None
    raise ConfigurationError(f"priority must be a name or an int 0..100, not {value!r}")


def check_routing_key(routing_key: str) -> str:
    """Return the routing key if legal.

    Raises:
        ConfigurationError: the key is empty, too long or has illegal characters.
    """
    return _checked(ROUTING_KEY_RE, routing_key, "routing key", 64)


def check_job_name(name: str) -> str:
    """Return the job name if legal.

    Raises:
        ConfigurationError: the name is empty, too long or has illegal characters.
    """
    return _checked(JOB_NAME_RE, name, "job name", 200)


def _checked(pattern: re.Pattern[str], value: str, what: str, longest: int) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigurationError(f"illegal {what} {value!r}: use 1-{longest} characters from A-Z a-z 0-9 _ - . :")
    return value


def to_seconds(value: Duration | None, name: str = "duration") -> float | None:
    """Convert a ``float | timedelta | str`` argument to seconds once, at the edge.

    Strings are durations as users write them: ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``,
    ``"500ms"`` or plain seconds (``bananas.durations.parse_duration``).

    Args:
        value: seconds, a ``timedelta``, a duration string, or None.
        name: what the value is (``delay``, ``timeout``), for the error message.

    Returns:
        Seconds, or None for None.

    Raises:
        ConfigurationError: a string that is not a duration, or a value that is not a number.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration(value, name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be seconds, a timedelta or a duration ('5m'), not {value!r}") from None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``min(max_s, base_s * 2**attempt)``, jittered by ±``jitter``."""

    base_s: float = 1.0
    max_s: float = 3600.0
    jitter: float = 0.2

    def delay_s(self, attempt: int, rand: float) -> float:
        """Delay before retry number ``attempt`` (1-based); ``rand`` is uniform in [0, 1)."""
        raw = min(self.max_s, self.base_s * float(2**attempt))
        return float(max(0.0, min(self.max_s, raw * (1 + self.jitter * (2 * rand - 1)))))


class NodeInput(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where one parameter of a workflow node's payload comes from. ``source`` is a node
    id (that node's result), ``{"node": id, "path": [key or index, ...]}`` (an item of
    it), or a list of sources (a list of results: a group's)."""

    param: str
    source: str | list[Any] | dict[str, Any]


class WorkflowLink(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A job that is a workflow node: the workflow's id, the node's id, and the payload
    parameters the worker fills in from other nodes' results before the handler runs."""

    id: str
    node: str
    inputs: list[NodeInput] = msgspec.field(default_factory=list)


class Job(msgspec.Struct, kw_only=True, omit_defaults=False, gc=False):
    """One job, exactly the JSON object of the wire format (see docs/WIRE.md)."""

    id: str
    name: str
    payload: dict[str, Any]
    priority: int = int(Priority.NORMAL)
    routing_key: str = "default"
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    #: retries after the first attempt; None: the running worker's MAX_RETRIES.
    max_retries: int | None = None
    #: seconds one attempt may run; None: the running worker's JOB_TIMEOUT.
    timeout: float | None = None
    created_at: float = 0.0
    scheduled_for: float | None = None
    description: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    error: str | None = None
    result: Any = None
    #: set on the jobs of a workflow's nodes (docs/WORKFLOWS.md)
    workflow: WorkflowLink | None = None
    #: unix time after which the job, not started yet, never runs (``cancelled``/``expired``)
    expires_at: float | None = None
    v: int = WIRE_VERSION
    # Fields below are filled by the broker when a job is read back.
    reason: str | None = None
    traceback: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    deliveries: int = 0
    progress: float | None = None
    worker: str | None = None
    #: the start of a body that could not be decoded (``wire.RAW_EXCERPT_BYTES`` at most)
    raw: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished for good (completed, failed or cancelled)."""
        return self.status.is_terminal


#: ``unique_mode``: how long a unique key is held (docs/FLOW_CONTROL.md).
UNIQUE_MODES = ("until_done", "until_started")


@dataclass(frozen=True, slots=True)
class UniqueLock:
    """A job's unique key (``submit(unique_key=...)``): while a job holding ``key`` in its
    routing key is pending, scheduled or running (``until_done``), or pending/scheduled
    and never started (``until_started``), and at most ``ttl_s``, a submit with the same
    key stores nothing and gets that job's id."""

    key: str
    ttl_s: float
    mode: str = "until_done"


# ---------------------------------------------------------------------------
# ULIDs: 48-bit millisecond timestamp + 80 random bits, Crockford base32, monotonic
# within a process so that ids made in the same millisecond still sort in order.

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_ulid_lock = threading.Lock()
_ulid_state: list[Any] = [0, 0, ""]  # last millisecond, last random part, the id without its last 2 characters
_random = random.SystemRandom()


def new_id() -> str:
    """Return a new ULID string (26 characters, sortable by creation time)."""
    ms = time.time_ns() // 1_000_000
    last_ms: int
    rand: int
    stem: str
    with _ulid_lock:
        last_ms, rand, stem = _ulid_state
        if ms <= last_ms:
            ms = last_ms
            rand += 1
            if rand >= 1 << 80:  # pragma: no cover - 2^79 ids in one millisecond
                ms += 1
                rand = _random.getrandbits(79)
                stem = ""
            elif not rand & 1023:  # the increment carried out of the last 10 bits
                stem = ""
        else:
            rand = _random.getrandbits(79)  # the top bit stays free for increments
            stem = ""
        if not stem:  # all but the last 2 characters change at most once per 1,024 ids
            stem = _stem(ms, rand)
        _ulid_state[0] = ms
        _ulid_state[1] = rand
        _ulid_state[2] = stem
    return stem + _PAIRS[rand & 1023]


def _stem(ms: int, rand: int) -> str:
    p = _PAIRS
    return (
        p[ms >> 40] + p[(ms >> 30) & 1023] + p[(ms >> 20) & 1023] + p[(ms >> 10) & 1023] + p[ms & 1023]
        + p[rand >> 70] + p[(rand >> 60) & 1023] + p[(rand >> 50) & 1023] + p[(rand >> 40) & 1023]
        + p[(rand >> 30) & 1023] + p[(rand >> 20) & 1023] + p[(rand >> 10) & 1023]
    )  # fmt: skip
