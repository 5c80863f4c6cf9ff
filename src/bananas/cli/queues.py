"""``bananas queues``: depth per routing key and priority, scheduled, processing, dead."""

from __future__ import annotations

import click

from bananas.brokers.base import QueueStats
from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_table, fmt_priority
from bananas.client import Client

HEADERS = ("QUEUE", "READY", "READY BY PRIORITY", "SCHEDULED", "PROCESSING", "DEAD", "SUSPECTS")


def by_priority(stats: QueueStats) -> str:
    """``high=2 normal=5`` (highest first), ``-`` when nothing is ready."""
    pairs = sorted(stats.ready_by_priority.items(), reverse=True)
    return " ".join(f"{fmt_priority(p)}={n}" for p, n in pairs if n) or "-"


@click.command()
@url_option
def queues(url: str | None) -> None:
    """Show every routing key's depth."""
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        stats = client.queue_stats()
    rows: list[tuple[object, ...]] = [
        (s.routing_key, s.ready, by_priority(s), s.scheduled, s.processing, s.dead, s.suspects) for s in stats
    ]
    if len(stats) > 1:
        rows.append(
            ("(total)", sum(s.ready for s in stats), "", sum(s.scheduled for s in stats),
             sum(s.processing for s in stats), sum(s.dead for s in stats), sum(s.suspects for s in stats))
        )  # fmt: skip
    echo_table(HEADERS, rows, empty="no queues yet")
