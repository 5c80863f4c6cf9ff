"""``bananas worker --app MODULE:ATTR``: run a worker, or P of them under a supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import click

from bananas import Bananas, brokers, chaos
from bananas.brokers.base import Reclaim
from bananas.cli.logs import stop_logging
from bananas.cli.observe import supervise, supervisor_env, tracing, with_metrics_port, worker_middleware
from bananas.cli.options import (
    DURATION,
    POSITIVE_DURATION,
    BadInput,
    build_settings,
    load_app,
    ttl_flags,
    ttl_options,
    url_option,
)
from bananas.cli.recycle import Recycle
from bananas.cli.scheduler import run_scheduler
from bananas.errors import BrokerUnavailable
from bananas.middleware import Middleware
from bananas.observability.tracer_provider import check_tracing
from bananas.settings import WORKER_MODES, Settings, parse_priorities
from bananas.worker import loopwatch
from bananas.worker.memory import CEILING_FACTOR
from bananas.worker.supervisor import RECYCLE_EXIT, Supervisor
from bananas.worker.worker import Worker

logger = logging.getLogger(__name__)

#: Flags passed on to child processes unchanged: (flag, parameter name).
_CHILD_FLAGS = (
    ("--url", "url"),
    ("--concurrency", "concurrency"),
    ("--routing-keys", "routing_keys"),
    ("--mode", "mode"),
    ("--priorities", "priorities"),
    ("--job-types", "job_types"),
    ("--lease", "lease"),
    ("--grace", "grace"),
    ("--completed-ttl", "completed_ttl"),
    ("--failed-ttl", "failed_ttl"),
    ("--max-jobs-per-child", "max_jobs_per_child"),
    ("--max-memory-per-child", "max_memory_per_child"),
)


def child_argv(params: Mapping[str, Any]) -> list[str]:
    """The command line of one supervised child: the same flags without ``--processes``,
    which makes it a plain worker.

    Only flags the user gave are repeated; the rest the child resolves from the same
    environment, so a URL from BANANAS_URL never appears in the process list.
    """
    argv = [sys.executable, "-m", "bananas", "worker", "--app", str(params["app_ref"])]
    for flag, name in _CHILD_FLAGS:
        if params.get(name) is not None:
            argv += [flag, str(params[name])]
    if params.get("no_scheduler"):
        argv.append("--no-scheduler")
    return argv


def split_keys(text: str | None, flag: str = "--routing-keys") -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; None when the flag was not given.

    Raises:
        BadInput: the flag names no key at all.
    """
    if text is None:
        return None
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise BadInput(f"{flag} needs at least one name")
    return keys


def stop_timeout_s(settings: Settings) -> float:
    """How long a supervisor waits for a stopping child: its grace period, time to store
    outcomes and give leases back (bounded by the lease length), plus a margin."""
    w = settings.worker
    return w.grace_s + 2 * max(5.0, w.lease_s) + 10.0


async def check_credentials(url: str) -> None:
    """Raise ``BrokerAuthenticationError`` when the broker refuses the URL's credentials
    (a broker that is down is left to the workers, which ride it out)."""
    broker = brokers.from_url(url)
    try:
        await broker.ping()
    except BrokerUnavailable:
        pass
    finally:
        await broker.close()


@click.command()
@click.option("--app", "app_ref", required=True, metavar="MODULE:ATTR", help="The Bananas app, e.g. proj.tasks:app.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Jobs run at once [env WORKER_CONCURRENCY].",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    metavar="P",
    help="Run P worker processes under a supervisor that restarts dead ones.",
)
@click.option("--routing-keys", default=None, metavar="A,B", help="Queues to consume [env WORKER_ROUTING_KEYS].")
@click.option("--mode", type=click.Choice(WORKER_MODES), default=None, help="Worker mode [env WORKER_MODE].")
@click.option(
    "--priorities",
    default=None,
    metavar="P,Q",
    help="specialized: high,normal,low or ranges 80-100 [env WORKER_PRIORITIES].",
)
@click.option("--job-types", default=None, metavar="A,B", help="job-specialized: task names [env WORKER_JOB_TYPES].")
@click.option(
    "--lease",
    type=POSITIVE_DURATION,
    default=None,
    metavar="DURATION",
    help="How long an unrenewed lease lasts (30s, 5m, or seconds) [default: 30s].",
)
@click.option("--grace", type=DURATION, default=None, metavar="DURATION", help="Shutdown grace period [default: 30s].")
@ttl_options
@click.option(
    "--max-jobs-per-child",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Replace a worker process after N jobs (it finishes what runs first).",
)
@click.option(
    "--max-memory-per-child",
    type=click.FloatRange(min=1),
    default=None,
    metavar="MB",
    help="Replace a worker process whose RSS passed MB MiB (checked as jobs finish); "
    "under --processes, one past twice MB while a job runs is killed.",
)
@click.option("--no-scheduler", is_flag=True, help="Do not run the scheduler in this worker [env ENABLE_SCHEDULER].")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve /metrics, /health and /ready on PORT [env BANANAS_METRICS_PORT].",
)
@url_option
@click.pass_context
def worker(
    ctx: click.Context,
    *,
    app_ref: str,
    concurrency: int | None,
    processes: int | None,
    routing_keys: str | None,
    mode: str | None,
    priorities: str | None,
    job_types: str | None,
    lease: float | None,
    grace: float | None,
    completed_ttl: float | None,
    failed_ttl: float | None,
    max_jobs_per_child: int | None,
    max_memory_per_child: float | None,
    no_scheduler: bool,
    metrics_port: int | None,
    url: str | None,
) -> None:
    """Run a worker (until SIGTERM/SIGINT).

    On SIGTERM/SIGINT it stops fetching, finishes running jobs within the grace period
    and gives the rest back to their queues. With --processes P (even 1) a supervisor
    runs P worker processes and restarts any that dies; without it the worker runs in
    this process. A process that reached --max-jobs-per-child or --max-memory-per-child
    stops the same way and exits with code 75; a supervisor replaces it at once (without
    one, whatever runs the worker should); so does one an async handler blocks past its timeout.
    """
    app = load_app(app_ref)
    settings = build_settings(
        url, app, jobs=ttl_flags(completed_ttl, failed_ttl),
        concurrency=concurrency, processes=processes, routing_keys=split_keys(routing_keys), mode=mode,
        lease_s=lease, grace_s=grace, priorities=parse_priorities(priorities) if priorities else None, watch_loop=True,
        job_types=split_keys(job_types, "--job-types"), enable_scheduler=False if no_scheduler else None,
    )  # fmt: skip
    app.configure(settings := with_metrics_port(settings, metrics_port))
    w = settings.worker
    if processes is not None and w.mode != "scheduler-only":
        check_tracing(settings, os.environ)  # each child sets up its own; a bad setting fails here, once
        env = supervisor_env(settings, os.environ)
        asyncio.run(check_credentials(settings.url))  # children would only fail the same way, forever
        ctx.exit(asyncio.run(supervise(supervisor_of(ctx.params, settings, env), settings)))
    with tracing(settings):
        if w.mode == "scheduler-only":
            asyncio.run(run_scheduler(settings, app=app))
        elif _run_here(app, settings, Recycle(max_jobs_per_child, max_memory_per_child)):
            ctx.exit(RECYCLE_EXIT)


def supervisor_of(params: Mapping[str, Any], settings: Settings, env: Mapping[str, str] | None) -> Supervisor:
    """The supervisor of ``bananas worker --processes``: children started with the same
    options, their jobs given back when they die, and the memory ceiling (``worker.memory``).
    A chaos file the children would refuse (``BANANAS_ENV``) is refused here, once."""
    chaos.from_env(env)
    limit = params.get("max_memory_per_child")
    return Supervisor(
        child_argv(params), settings.worker.processes, stop_timeout_s=stop_timeout_s(settings), env=env,
        on_death=give_back_jobs_of(settings), memory_ceiling_mib=None if limit is None else CEILING_FACTOR * limit,
    )  # fmt: skip


def give_back_jobs_of(settings: Settings) -> Callable[[int, str], Awaitable[None]]:
    """The supervisor's ``on_death``: a dead child's jobs go back to their queues at once
    (or are dead-lettered ``worker_lost`` naming the death), not when their leases expire."""
    w = settings.worker
    reclaim = Reclaim(w.max_deliveries, settings.jobs.failed_ttl_s)

    async def give_back(pid: int, how: str) -> None:
        broker = brokers.from_url(settings.url)
        try:
            back, lost = await broker.release_dead(f"{socket.gethostname()}:{pid}:", w.routing_keys, how, reclaim)
        finally:
            await broker.close()
        if back or lost:
            logger.warning(
                "worker process pid %d died (%s): %d of its jobs went back to their queues, %d were dead-lettered "
                "worker_lost", pid, how, back, lost, extra={"component": "supervisor"},
            )  # fmt: skip

    return give_back


def _run_here(app: Bananas, settings: Settings, recycle: Recycle) -> bool:
    """Run the worker in this process; whether it stopped to be replaced (``Recycle``)."""
    middleware = worker_middleware(settings, os.environ, recycle)
    loopwatch.before_exit(stop_logging)  # a process the watch replaces writes out its last records
    asyncio.run(run_worker(app, settings, middleware=middleware))
    return recycle.reason is not None


async def run_worker(
    app: Bananas, settings: Settings, *, install_signals: bool = True, middleware: Sequence[Middleware] = ()
) -> Worker:
    """Run a worker until SIGTERM/SIGINT (the CLI's worker process)."""
    worker = Worker(app, settings, middleware=middleware)
    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
    await worker.run()
    return worker
