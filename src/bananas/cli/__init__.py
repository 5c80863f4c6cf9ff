"""The ``bananas`` command: a click group with one module per command (as rq's cli)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from bananas import __version__
from bananas.cli.options import CLIError
from bananas.errors import BananasError

# The commands in --help order; command ``x`` is ``bananas.cli.x:x``, imported when it
# runs (or when --help lists them): a worker process does not carry the benchmark, the
# dashboard or the demo in its memory.
_COMMANDS = ("worker", "scheduler", "schedules", "submit", "job", "jobs", "workflows", "workflow", "dlq", "queues",
             "tasks", "dashboard", "demo", "bench", "chaos", "health")  # fmt: skip


class BananasGroup(click.Group):
    """Turns every ``BananasError`` a command raises into a one-line ``error: ...``.

    Bad input (configuration, payload) exits with 2, anything else (broker unreachable,
    unknown job) with 1; no traceback is shown for either.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return super().get_command(ctx, cmd_name)
        command: click.Command = getattr(importlib.import_module(f"bananas.cli.{cmd_name}"), cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BananasError as exc:
            raise CLIError.from_error(exc) from None


@click.group(cls=BananasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bananas")
def main() -> None:
    """Bananas: a distributed task queue.

    Every command takes --url; without it BANANAS_URL, then REDIS_URL, then the
    embedded sqlite:///bananas.db is used. LOG_LEVEL and LOG_FORMAT (text, json) set up
    logging; the standard OTEL_* variables turn on tracing and, with bananas[otel],
    exporting spans (docs/OBSERVABILITY.md).
    """


__all__ = ["main"]
