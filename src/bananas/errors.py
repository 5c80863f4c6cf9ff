"""The whole Bananas exception tree.

```text
BananasError
├── ConfigurationError
│   └── MissingDependencyError   names the extra: pip install "bananas[nats]"
├── PermanentError               raised by handlers: fail now, no retry
├── PayloadError                 payload does not fit the handler's hints
│   └── PayloadTooLarge
├── BrokerError
│   └── BrokerUnavailable
├── JobError: JobNotFound, JobTimeout, JobFailed
├── ResultError: ResultTimeout
├── WaitTimeout                  bananas.testing: a condition did not hold in time
│   └── JoinTimeout              a queue did not drain in time
└── RateLimitExceeded
```
"""

from __future__ import annotations


class BananasError(Exception):
    """Root of every error Bananas raises."""


class ConfigurationError(BananasError):
    """A setting, URL, priority, routing key or CLI option is invalid."""


class MissingDependencyError(ConfigurationError):
    """An optional dependency is missing; the message names the extra to install."""


class PermanentError(BananasError):
    """Raised by a handler to fail the job at once, without retry."""


class PayloadError(BananasError):
    """A payload is not a JSON object or does not fit the handler's type hints.

    ``field`` names the offending field (dotted for nested ones) when one is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLarge(PayloadError):
    """An encoded job is larger than the configured size limit."""


class BrokerError(BananasError):
    """The broker answered with an error."""


class BrokerAuthenticationError(BrokerError):
    """The broker refused the credentials (or the user may not run a command): not a
    transient fault, so nothing retries it; processes exit instead."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached within the timeout; the message names the operation."""


class JobError(BananasError):
    """Base for errors about one job."""


class JobNotFound(JobError):
    """No job with this id exists (or its record has expired)."""


class JobTimeout(JobError):
    """A handler ran longer than the job's timeout."""


class JobFailed(JobError):
    """``submit_and_wait`` found the job failed or cancelled; ``.job`` holds its record."""

    def __init__(self, message: str, job: object = None) -> None:
        super().__init__(message)
        self.job = job


class ResultError(BananasError):
    """Base for errors about results."""


class ResultTimeout(ResultError):
    """The job did not reach a terminal status before the wait timed out."""


class RateLimitExceeded(BananasError):
    """A rate limit refused the operation."""


class WorkflowError(ConfigurationError):
    """A workflow that cannot be submitted (a cycle, an unknown node or task, a payload that
    does not fit); ``node`` names the node at fault when there is one."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(f"node {node!r}: {message}" if node is not None else message)
        self.node = node


class WorkflowFailed(BananasError):
    """``WorkflowHandle.wait`` found the workflow failed or cancelled; ``.workflow`` holds
    its record (every node's status and error)."""

    def __init__(self, message: str, workflow: object = None) -> None:
        super().__init__(message)
        self.workflow = workflow


class WorkflowNotFound(BananasError):
    """No workflow with this id exists (or its record has expired)."""


class WaitTimeout(BananasError, TimeoutError):
    """``bananas.testing.wait_until``: the condition did not hold in time; the message says
    what was awaited."""


class JoinTimeout(WaitTimeout):
    """``bananas.testing.join``: the routing keys still had work when the timeout ran out;
    the message says what was still pending."""


__all__ = [
    "BananasError",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigurationError",
    "JobError",
    "JobFailed",
    "JoinTimeout",
    "JobNotFound",
    "JobTimeout",
    "MissingDependencyError",
    "PayloadError",
    "PayloadTooLarge",
    "PermanentError",
    "RateLimitExceeded",
    "ResultError",
    "ResultTimeout",
    "WaitTimeout",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowNotFound",
]
