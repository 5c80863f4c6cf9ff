"""``bananas queues``: depth per routing key and priority, scheduled, processing, dead,
paused; ``bananas queues pause KEY`` / ``resume KEY``."""

from __future__ import annotations

import click

from bananas.brokers.base import QueueStats
from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_table, fmt_priority
from bananas.client import Client

HEADERS = ("QUEUE", "READY", "READY BY PRIORITY", "SCHEDULED", "PROCESSING", "DEAD", "SUSPECTS", "STATE")


def by_priority(stats: QueueStats) -> str:
    """``high=2 normal=5`` (highest first), ``-`` when nothing is ready."""
    pairs = sorted(stats.ready_by_priority.items(), reverse=True)
    return " ".join(f"{fmt_priority(p)}={n}" for p, n in pairs if n) or "-"


@click.group(invoke_without_command=True)
@url_option
@click.pass_context
def queues(ctx: click.Context, url: str | None) -> None:
    """Show every routing key's depth and state (pause KEY / resume KEY change it)."""
    ctx.obj = url
    if ctx.invoked_subcommand is not None:
        return
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        stats = client.queue_stats()
    rows: list[tuple[object, ...]] = [
        (s.routing_key, s.ready, by_priority(s), s.scheduled, s.processing, s.dead, s.suspects,
         "paused" if s.paused else "active")
        for s in stats
    ]  # fmt: skip
    if len(stats) > 1:
        rows.append(
            ("(total)", sum(s.ready for s in stats), "", sum(s.scheduled for s in stats),
             sum(s.processing for s in stats), sum(s.dead for s in stats), sum(s.suspects for s in stats), "")
        )  # fmt: skip
    echo_table(HEADERS, rows, empty="no queues yet")


@queues.command()
@click.argument("key")
@url_option
@click.pass_obj
def pause(parent_url: str | None, key: str, url: str | None) -> None:
    """Stop workers taking KEY's jobs (running ones finish), until resume KEY."""
    _set_paused(url or parent_url, key, True)


@queues.command()
@click.argument("key")
@url_option
@click.pass_obj
def resume(parent_url: str | None, key: str, url: str | None) -> None:
    """Let workers take KEY's jobs again."""
    _set_paused(url or parent_url, key, False)


def _set_paused(url: str | None, key: str, paused: bool) -> None:
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        changed = client.pause(key) if paused else client.resume(key)
    state = "paused" if paused else "resumed"
    click.echo(f"{key} {state}" if changed else f"{key} was already {'paused' if paused else 'active'}")
