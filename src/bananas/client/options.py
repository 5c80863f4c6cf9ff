"""The options ``submit`` takes, and how they become a ``JobSpec`` (callbacks apart)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

from bananas.durations import Duration
from bananas.errors import ConfigurationError, WorkflowError
from bananas.job import Priority
from bananas.submission import JobSpec
from bananas.workflows.canvas import Signature


class WaitedJobOptions(TypedDict, total=False):
    """Options of ``submit_and_wait``: those of ``submit`` but the job timeout."""

    priority: str | int | Priority | None
    routing_key: str | None
    delay: Duration | None
    at: datetime | None
    description: str
    max_retries: int | None
    headers: Mapping[str, str] | None
    expires: Duration | datetime | None


class SubmitOptions(WaitedJobOptions, total=False):
    """Keyword options of ``submit``; each is described there."""

    timeout: Duration | None
    unique_key: str | None
    unique_ttl: Duration | None
    unique_mode: str | None
    on_success: Signature | Sequence[Signature] | None
    on_failure: Signature | Sequence[Signature] | None
    on_complete: Signature | Sequence[Signature] | None


def split_callbacks(options: SubmitOptions) -> tuple[SubmitOptions, dict[str, list[Signature]]]:
    """``submit``'s options without the callbacks, and the callbacks given (by option).

    Raises:
        WorkflowError: a callback that is neither a Signature nor a list of them.
    """
    rest = options.copy()
    given = {
        "on_success": rest.pop("on_success", None),
        "on_failure": rest.pop("on_failure", None),
        "on_complete": rest.pop("on_complete", None),
    }
    found: dict[str, list[Signature]] = {}
    for option, value in given.items():
        if isinstance(value, Signature):
            found[option] = [value]
        elif isinstance(value, list | tuple):
            if value:
                found[option] = list(value)
        elif value is not None:
            raise WorkflowError(f"a callback is a Signature (task.s(...)) or a list of them, got {value!r}", option)
    return rest, found


def job_spec(name: str, payload: Mapping[str, Any] | None, options: SubmitOptions | WaitedJobOptions) -> JobSpec:
    """A ``JobSpec`` from ``submit``'s arguments.

    Raises:
        ConfigurationError: an option that does not exist or is not available yet.
    """
    rest: dict[str, Any] = dict(options)
    try:
        return JobSpec(name, payload if payload is not None else {}, **rest)
    except TypeError:
        unknown = sorted(set(rest) - set(JobSpec.__dataclass_fields__))
        raise ConfigurationError(f"unknown submit option(s): {', '.join(unknown)}") from None
