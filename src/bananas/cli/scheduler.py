"""``bananas scheduler [--app MODULE:ATTR]``: only the scheduler duties, no job slots."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import click

from bananas import brokers
from bananas.app import Bananas
from bananas.cli.observe import tracing
from bananas.cli.options import build_settings, load_app, ttl_flags, ttl_options, url_option
from bananas.envvars import redact_url
from bananas.job import new_id
from bananas.scheduler import Scheduler
from bananas.settings import Settings

logger = logging.getLogger(__name__)


async def run_scheduler(settings: Settings, *, install_signals: bool = True, app: Bananas | None = None) -> None:
    """Run the scheduler loop (leader-elected) until SIGTERM/SIGINT.

    Args:
        settings: scheduler, worker (``max_deliveries``) and job settings; ``url``.
        install_signals: stop on SIGTERM/SIGINT (off when embedded in another program).
        app: the app whose cron schedules the leader fires.
    """
    broker = brokers.from_url(settings.url)
    holder = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
    scheduler = Scheduler(broker, settings, holder=holder, app=app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if install_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(scheduler.run())
    logger.info("scheduler %s started on %s", holder, redact_url(settings.url), extra={"component": "scheduler"})
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            raise error  # e.g. the broker refused the credentials
    finally:
        waiter.cancel()
        await scheduler.stop(task)
        await broker.close()
        for sig in signals:
            loop.remove_signal_handler(sig)
        logger.info("scheduler %s stopped after %d ticks", holder, scheduler.ticks, extra={"component": "scheduler"})


@click.command()
@click.option("--app", "app_ref", default=None, metavar="MODULE:ATTR", help="The app (its URL and, later, cron jobs).")
@ttl_options
@url_option
def scheduler(app_ref: str | None, completed_ttl: float | None, failed_ttl: float | None, url: str | None) -> None:
    """Run only the scheduler (no job slots).

    It moves due delayed jobs and retries to their queues, recovers expired leases
    (dead-lettering as worker_lost, kept --failed-ttl) and fires the app's cron
    schedules. Several may run: one is elected leader.
    """
    app = load_app(app_ref) if app_ref else None
    settings = build_settings(url, app, jobs=ttl_flags(completed_ttl, failed_ttl))
    if app is not None:
        app.configure(settings)
    with tracing(settings):
        asyncio.run(run_scheduler(settings, app=app))
