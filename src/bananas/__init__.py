"""Bananas: a distributed task queue for Python."""

from __future__ import annotations

from bananas.app import Bananas
from bananas.client import AsyncClient, Client, JobSpec
from bananas.context import Context
from bananas.errors import (
    BananasError,
    BrokerAuthenticationError,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
    JoinTimeout,
    MissingDependencyError,
    PayloadError,
    PayloadTooLarge,
    PermanentError,
    RateLimitExceeded,
    ResultError,
    ResultTimeout,
    WaitTimeout,
    WorkflowError,
    WorkflowFailed,
    WorkflowNotFound,
)
from bananas.job import DeadReason, Job, JobStatus, Priority, RetryPolicy
from bananas.schedule import Schedule
from bananas.settings import Settings
from bananas.task import Task
from bananas.workflows import DAG, Signature, chain, chord, group

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Bananas",
    "DAG",
    "BananasError",
    "BrokerError",
    "BrokerAuthenticationError",
    "BrokerUnavailable",
    "Client",
    "ConfigurationError",
    "Context",
    "DeadReason",
    "Job",
    "JobError",
    "JobFailed",
    "JoinTimeout",
    "JobNotFound",
    "JobSpec",
    "JobStatus",
    "JobTimeout",
    "MissingDependencyError",
    "PayloadError",
    "PayloadTooLarge",
    "PermanentError",
    "Priority",
    "RateLimitExceeded",
    "ResultError",
    "ResultTimeout",
    "RetryPolicy",
    "Schedule",
    "Settings",
    "Signature",
    "Task",
    "WaitTimeout",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowNotFound",
    "chain",
    "chord",
    "group",
    "__version__",
]
