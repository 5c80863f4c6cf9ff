"""Clients: ``AsyncClient`` for asyncio code, ``Client`` that blocks; both submit jobs,
read them back and wait for results."""

from __future__ import annotations

from bananas.client.aio import AsyncClient
from bananas.client.options import SubmitOptions, WaitedJobOptions
from bananas.client.sync import Client
from bananas.client.workflows import AsyncWorkflowHandle, WorkflowHandle, WorkflowProgress
from bananas.submission import JobSpec

__all__ = [
    "AsyncClient", "AsyncWorkflowHandle", "Client", "JobSpec", "SubmitOptions", "WaitedJobOptions", "WorkflowHandle",
    "WorkflowProgress",
]  # fmt: skip
