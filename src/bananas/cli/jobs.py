"""``bananas jobs [--status S] [--name N] [--limit N]``: a table of jobs, newest first."""

from __future__ import annotations

import click

from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_table, fmt_priority, fmt_time, outcome
from bananas.client import Client
from bananas.job import JobStatus

HEADERS = ("ID", "NAME", "STATUS", "PRIORITY", "QUEUE", "ATTEMPTS", "CREATED", "RESULT / ERROR")


@click.command()
@click.option("--status", type=click.Choice([s.value for s in JobStatus]), default=None, help="Only this status.")
@click.option("--name", default=None, help="Only jobs with this name.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most jobs to show.")
@url_option
def jobs(status: str | None, name: str | None, limit: int, url: str | None) -> None:
    """List jobs, newest first."""
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        found = client.list_jobs(status, name, limit)
    rows = [
        (j.id, j.name, j.status.value, fmt_priority(j.priority), j.routing_key, j.attempts, fmt_time(j.created_at),
         outcome(j))
        for j in found
    ]  # fmt: skip
    echo_table(HEADERS, rows, empty="no jobs")
