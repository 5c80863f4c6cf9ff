"""Plain-text output: aligned tables and readable job fields (click only, no rich)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

from bananas.job import Job, Priority

#: Widest a table cell gets before it is cut with an ellipsis.
MAX_CELL = 60


def one_line(value: object, width: int = MAX_CELL) -> str:
    """``value`` as a single line of at most ``width`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], width: int = MAX_CELL) -> list[str]:
    """Left-aligned columns separated by two spaces; cells are cut at ``width``."""
    cells = [[one_line(c, width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *cells]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return lines


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str = "(nothing)") -> None:
    """Print a table, or ``empty`` when there are no rows."""
    if not rows:
        click.echo(empty)
        return
    for line in table(headers, rows):
        click.echo(line)


def fmt_time(ts: float | None, *, ms: bool = False) -> str:
    """Unix seconds as local ``YYYY-mm-dd HH:MM:SS`` (``-`` for none)."""
    if not ts:
        return "-"
    moment = datetime.fromtimestamp(ts).astimezone()
    return moment.isoformat(sep=" ", timespec="milliseconds" if ms else "seconds")[: 23 if ms else 19]


def fmt_priority(score: int) -> str:
    """``high``/``normal``/``low`` for the named points, else the number."""
    try:
        return Priority(score).name.lower()
    except ValueError:
        return str(score)


def to_json(value: Any) -> str:
    """Compact JSON for a payload or result."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)


def outcome(job: Job) -> str:
    """The result of a completed job, else its error (empty when neither)."""
    if job.status.value == "completed":
        return to_json(job.result)
    return job.error or ""


def job_fields(job: Job) -> list[tuple[str, str]]:
    """Label/value pairs for ``bananas job``; empty fields are left out."""
    duration = f"{job.finished_at - job.started_at:.3f} s" if job.finished_at and job.started_at else ""
    fields = [
        ("id", job.id),
        ("name", job.name),
        ("status", job.status.value + (f" ({job.reason})" if job.reason else "")),
        ("priority", f"{job.priority} ({fmt_priority(job.priority)})"),
        ("routing key", job.routing_key),
        ("attempts", f"{job.attempts} of {_allowed(job)} (deliveries {job.deliveries})"),
        ("timeout", "the worker's JOB_TIMEOUT" if job.timeout is None else f"{job.timeout:g} s"),
        ("created", fmt_time(job.created_at, ms=True)),
        ("scheduled for", fmt_time(job.scheduled_for, ms=True) if job.scheduled_for else ""),
        ("started", fmt_time(job.started_at, ms=True) if job.started_at else ""),
        ("finished", fmt_time(job.finished_at, ms=True) if job.finished_at else ""),
        ("duration", duration),
        ("progress", f"{job.progress:.0%}" if job.progress is not None else ""),
        ("worker", job.worker or ""),
        ("workflow", f"{job.workflow.id} (node {job.workflow.node})" if job.workflow is not None else ""),
        ("description", job.description),
        ("headers", to_json(job.headers) if job.headers else ""),
        ("payload", to_json(job.payload)),
        ("result", to_json(job.result) if job.status.value == "completed" else ""),
        ("error", job.error or ""),
        ("raw body", _raw(job.raw)),
    ]
    return [(label, value) for label, value in fields if value]


def _raw(raw: str | None) -> str:
    """An undecodable body's start, on one line with control characters escaped."""
    if not raw:
        return ""
    shown = raw[:200].encode("unicode_escape").decode("ascii")
    return shown if len(raw) <= 200 else f"{shown} ... ({len(raw)} characters kept; --json shows them)"


def echo_job(job: Job) -> None:
    """Print a job's fields, one per line, and its traceback (if any) at the end."""
    pairs = job_fields(job)
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        click.echo(f"{label.ljust(width)}  {value}")
    if job.traceback:
        click.echo("traceback:")
        for line in job.traceback.rstrip().splitlines():
            click.echo(f"  {line}")


def _allowed(job: Job) -> str:
    """Attempts a job may make: its retries + 1, or the worker's setting."""
    return "1 + the worker's MAX_RETRIES" if job.max_retries is None else str(job.max_retries + 1)
