"""``bananas tasks``: the task catalogue — what the running workers serve, and their defaults."""

from __future__ import annotations

import click
import msgspec

from bananas.catalogue import TaskInfo
from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_table, fmt_priority, fmt_time
from bananas.client import Client

HEADERS = ("TASK", "ROUTING KEY", "PRIORITY", "RETRIES", "TIMEOUT", "WORKERS", "LAST SEEN", "SUMMARY")


def row(info: TaskInfo) -> tuple[object, ...]:
    """One task as a table row; unset options read ``worker`` (the worker's setting applies)."""
    return (
        info.name, info.routing_key, "normal" if info.priority is None else fmt_priority(info.priority),
        "worker" if info.max_retries is None else info.max_retries,
        "worker" if info.timeout_s is None else f"{info.timeout_s:g} s",
        len(info.workers), fmt_time(max(info.workers.values(), default=None)), info.summary,
    )  # fmt: skip


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON (schemas included).")
@url_option
def tasks(as_json: bool, url: str | None) -> None:
    """List the tasks workers published: defaults, schemas and the workers serving them.

    Workers publish at start and every 30 s; a worker not seen for 90 s is not counted.
    """
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        entries = client.tasks()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(entries)).decode())
        return
    echo_table(HEADERS, [row(e) for e in entries], empty="no tasks published yet (is a worker running?)")
