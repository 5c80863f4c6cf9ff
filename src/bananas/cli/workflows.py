"""``bananas workflows [--limit N]``: a table of workflows, newest first."""

from __future__ import annotations

import click

from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_table, fmt_time
from bananas.client import Client

HEADERS = ("ID", "NAME", "KIND", "STATE", "NODES", "DONE", "CREATED", "FINISHED")
#: Node statuses that count as ended.
ENDED = ("completed", "failed", "skipped", "cancelled")


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most workflows to show.")
@url_option
def workflows(limit: int, url: str | None) -> None:
    """List workflows, newest first; `bananas workflow ID` shows one."""
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        found = client.list_workflows(limit)
    rows = [
        (w.id, w.name, w.kind, w.state, w.total, sum(w.counts.get(s, 0) for s in ENDED), fmt_time(w.created_at),
         fmt_time(w.finished_at) if w.finished_at else "")
        for w in found
    ]  # fmt: skip
    echo_table(HEADERS, rows, empty="no workflows")
