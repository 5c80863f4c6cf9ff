"""The ``bananas`` command: a click group with one module per command (as rq's cli)."""

from __future__ import annotations

from typing import Any

import click

from bananas import __version__
from bananas.cli.bench import bench
from bananas.cli.dashboard import dashboard
from bananas.cli.demo import demo
from bananas.cli.dlq import dlq
from bananas.cli.health import health
from bananas.cli.job import job
from bananas.cli.jobs import jobs
from bananas.cli.options import CLIError
from bananas.cli.queues import queues
from bananas.cli.scheduler import scheduler
from bananas.cli.schedules import schedules
from bananas.cli.submit import submit
from bananas.cli.worker import worker
from bananas.errors import BananasError


class BananasGroup(click.Group):
    """Turns every ``BananasError`` a command raises into a one-line ``error: ...``.

    Bad input (configuration, payload) exits with 2, anything else (broker unreachable,
    unknown job) with 1; no traceback is shown for either.
    """

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


for _command in (worker, scheduler, schedules, submit, job, jobs, dlq, queues, dashboard, demo, bench, health):
    main.add_command(_command)

__all__ = ["main"]
