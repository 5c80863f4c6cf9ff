"""``bananas dlq list | retry ID...|--all | purge``: the dead-letter queue."""

from __future__ import annotations

import sys

import click

from bananas.cli.options import BadInput, CLIError, build_settings, url_option
from bananas.cli.output import echo_table, fmt_time
from bananas.client import Client

HEADERS = ("ID", "NAME", "QUEUE", "ATTEMPTS", "REASON", "FAILED AT", "ERROR")


@click.group()
def dlq() -> None:
    """Inspect, retry or purge dead-lettered (failed) jobs."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most jobs to show.")
@url_option
def list_dead(limit: int, url: str | None) -> None:
    """List dead-lettered jobs, newest first."""
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        dead = client.dead_jobs(limit)
    rows = [(j.id, j.name, j.routing_key, j.attempts, j.reason or "", fmt_time(j.finished_at), j.error) for j in dead]
    echo_table(HEADERS, rows, empty="the dead-letter queue is empty")


@dlq.command()
@click.argument("job_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead-lettered job.")
@url_option
def retry(job_ids: tuple[str, ...], retry_all: bool, url: str | None) -> None:
    """Send dead jobs back to their queue.

    They start over with a fresh retry budget.
    """
    if bool(job_ids) == retry_all:
        raise BadInput("give job ids or --all (not both)")
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        count = client.retry_dead(None if retry_all else list(job_ids))
    click.echo(f"retried {count} job{'' if count == 1 else 's'}")
    if job_ids and count < len(set(job_ids)):
        missing = len(set(job_ids)) - count
        raise CLIError(f"{missing} of the given jobs {'is' if missing == 1 else 'are'} not in the dead-letter queue")


@dlq.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@url_option
def purge(yes: bool, url: str | None) -> None:
    """Delete every dead-lettered job.

    Asks first when run from a terminal (skip with --yes).
    """
    settings = build_settings(url)
    if not yes and sys.stdin.isatty():
        click.confirm("Delete every job in the dead-letter queue?", abort=True)
    with Client(settings.url, settings=settings) as client:
        count = client.purge_dead()
    click.echo(f"purged {count} job{'' if count == 1 else 's'}")
