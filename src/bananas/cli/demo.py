"""``bananas demo``: the whole system end to end on the embedded broker, no server needed.

It submits a mix of jobs (priorities, a delay, a retried job, a permanent failure), runs a
worker on a background thread, shows progress while they run, waits for one more with
``submit_and_wait`` and prints a summary. The broker lives in a temporary directory.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from bananas.app import Bananas
from bananas.cli.logs import configure_logging
from bananas.cli.output import fmt_priority, outcome, table
from bananas.client import Client, JobSpec
from bananas.demo import create_app
from bananas.job import Job, JobStatus
from bananas.settings import Settings, WorkerSettings
from bananas.worker.worker import Worker

#: Seconds the demo's jobs may take before it gives up.
DEADLINE_S = 12.0
#: Seconds between progress updates.
TICK_S = 0.25

#: What the demo submits, in this order (low first, to show that high still runs first):
#: (name, payload, priority, delay in seconds).
PLAN: tuple[tuple[str, dict[str, Any], str, float | None], ...] = (
    ("resize_image", {"url": "photos/beach.jpg", "width": 800}, "low", None),
    ("resize_image", {"url": "photos/dog.jpg", "width": 800}, "low", None),
    ("send_email", {"to": "ana@example.com", "subject": "Welcome"}, "normal", None),
    ("flaky", {"n": 42}, "normal", None),
    ("always_fails", {"reason": "card declined"}, "normal", None),
    ("send_email", {"to": "bo@example.com", "subject": "Your receipt"}, "normal", None),
    ("send_email", {"to": "later@example.com", "subject": "Reminder"}, "normal", 1.5),
    ("resize_image", {"url": "photos/avatar.png", "width": 64}, "high", None),
    ("send_email", {"to": "ops@example.com", "subject": "Password reset"}, "high", None),
)


@dataclass
class Tracked:
    """One submitted demo job."""

    id: str
    name: str
    priority: str
    delayed: bool


class BackgroundWorker:
    """A ``Worker`` on its own thread and event loop, built there (brokers may be thread-bound)."""

    def __init__(self, app: Bananas, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._ready = threading.Event()
        self._worker: Worker | None = None
        self._thread = threading.Thread(target=self._main, name="bananas-demo-worker", daemon=True)
        self.started_at = 0.0

    def _main(self) -> None:
        try:
            worker = self._worker = Worker(self._app, self._settings)
        finally:
            self._ready.set()
        asyncio.run(worker.run())

    def start(self) -> None:
        """Start the worker and return once it exists."""
        self.started_at = time.time()
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self) -> None:
        """Graceful stop; returns when the worker has exited (or after its grace period)."""
        if self._worker is not None:
            self._worker.stop()
        self._thread.join(self._settings.worker.grace_s + 5.0)


def submit_batch(client: Client) -> list[Tracked]:
    """Submit the plan in one round trip, before any worker runs."""
    specs = [JobSpec(name, payload, priority=prio, delay=delay) for name, payload, prio, delay in PLAN]
    ids = client.submit_many(specs)
    return [Tracked(i, s.name, str(s.priority), s.delay is not None) for i, s in zip(ids, specs, strict=True)]


def fetch(client: Client, tracked: Sequence[Tracked]) -> dict[str, Job]:
    """The current record of every tracked job."""
    jobs = {}
    for t in tracked:
        job = client.get_job(t.id)
        if job is not None:
            jobs[t.id] = job
    return jobs


def status_line(elapsed_s: float, jobs: Sequence[Job]) -> str:
    """``1.2s  pending 3 | processing 2 | ...   running: resize_image 60%``."""
    counts = {s: 0 for s in JobStatus}
    for job in jobs:
        counts[job.status] += 1
    parts = [f"{s.value} {n}" for s, n in counts.items() if n or s in (JobStatus.COMPLETED, JobStatus.FAILED)]
    running = [
        f"{j.name} {j.progress:.0%}" if j.progress is not None else j.name
        for j in jobs
        if j.status is JobStatus.PROCESSING
    ]
    line = f"{elapsed_s:5.1f}s  " + " | ".join(parts)
    return line + (f"   running: {', '.join(running)}" if running else "")


def watch(client: Client, tracked: Sequence[Tracked], echo_status: Callable[[str], None]) -> dict[str, Job]:
    """Show progress until every tracked job has finished or the deadline passes."""
    started = time.monotonic()
    while True:
        jobs = fetch(client, tracked)
        elapsed = time.monotonic() - started
        echo_status(status_line(elapsed, list(jobs.values())))
        done = len(jobs) == len(tracked) and all(j.is_terminal for j in jobs.values())
        if done or elapsed > DEADLINE_S:
            return jobs
        time.sleep(TICK_S)


class StatusPrinter:
    """A live-updating line on a terminal; on a pipe, a line whenever the counts change."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._last = ""
        self._width = shutil.get_terminal_size().columns - 1

    def __call__(self, line: str) -> None:
        if self.live:
            text = line[: self._width]
            click.echo("\r" + text.ljust(len(self._last)), nl=False)
            self._last = text
            return
        key = line.split("s  ", 1)[-1].split("   running:", 1)[0]
        if key != self._last:
            click.echo(line)
            self._last = key

    def close(self) -> None:
        """End the live line."""
        if self.live:
            click.echo("")


def start_offsets(tracked: Sequence[Tracked], jobs: dict[str, Job], t0: float) -> dict[str, float]:
    """Seconds from worker start to each job's (last) start."""
    offsets = {}
    for t in tracked:
        started = jobs[t.id].started_at if t.id in jobs else None
        if started:
            offsets[t.id] = started - t0
    return offsets


def summary(tracked: Sequence[Tracked], jobs: dict[str, Job], offsets: dict[str, float]) -> list[str]:
    """The summary table, in start order."""
    order = sorted(tracked, key=lambda t: offsets.get(t.id, float("inf")))
    rows: list[tuple[object, ...]] = []
    for t in order:
        job = jobs.get(t.id)
        if job is None:
            rows.append((t.id, t.name, t.priority, "?", "", "", "record missing"))
            continue
        start = f"+{offsets[t.id]:.2f}s" if t.id in offsets else "-"
        note = " (delayed)" if t.delayed else ""
        rows.append(
            (t.id, t.name, fmt_priority(job.priority) + note, job.status.value, job.attempts, start, outcome(job))
        )
    return table(("ID", "NAME", "PRIORITY", "STATUS", "ATTEMPTS", "STARTED", "RESULT / ERROR"), rows, width=70)


def check(tracked: Sequence[Tracked], jobs: dict[str, Job], offsets: dict[str, float]) -> list[str]:
    """What went differently from the plan (empty when all is well)."""
    problems = []
    expected = {"always_fails": JobStatus.FAILED}
    for t in tracked:
        job = jobs.get(t.id)
        want = expected.get(t.name, JobStatus.COMPLETED)
        if job is None or job.status is not want:
            problems.append(f"{t.name} {t.id}: {job.status.value if job else 'missing'}, expected {want.value}")
        elif t.name == "flaky" and job.attempts != 3:
            problems.append(f"flaky {t.id}: {job.attempts} attempts, expected 3")
        elif t.delayed and (job.started_at or 0) < (job.scheduled_for or 0) - 0.05:
            problems.append(f"delayed job {t.id} started before its time")
    firsts: dict[str, list[float]] = {"high": [], "normal": [], "low": []}
    for t in tracked:  # first attempts only: a retry starts late on purpose
        if not t.delayed and t.id in offsets and jobs[t.id].attempts == 1:
            firsts[t.priority].append(offsets[t.id])
    ranks = [firsts["high"], firsts["normal"], firsts["low"]]
    for before, after in itertools.pairwise(ranks):
        if before and after and max(before) > min(after):
            problems.append("a lower-priority job started before a higher-priority one")
    return problems


def demo_settings(url: str) -> Settings:
    """Settings of their own (the environment's worker options could break the plan)."""
    return Settings(url=url, worker=WorkerSettings(concurrency=2, lease_s=5.0, grace_s=2.0))


def run_demo(settings: Settings, *, live: bool) -> bool:
    """Run the whole demo on ``settings.url``; return whether everything went to plan."""
    app = create_app(settings)
    click.echo(f"Bananas demo: broker {settings.url}")
    click.echo(f"Submitting {len(PLAN)} jobs (low priority first) before any worker runs...")
    with Client(settings=settings, app=app) as client:
        tracked = submit_batch(client)
        runner = BackgroundWorker(app, settings)
        click.echo(f"Starting a worker with {settings.worker.concurrency} slots...")
        runner.start()
        try:
            printer = StatusPrinter(live)
            jobs = watch(client, tracked, printer)
            printer.close()
            click.echo("Waiting for one more job with submit_and_wait...")
            began = time.perf_counter()
            value = client.submit_and_wait(
                "resize_image", {"url": "photos/cover.jpg", "width": 1024}, priority="high", timeout=10
            )
            click.echo(f"  resize_image(photos/cover.jpg) -> {value!r} in {time.perf_counter() - began:.2f} s")
            dead = client.dead_jobs(10)
        finally:
            runner.stop()
    offsets = start_offsets(tracked, jobs, runner.started_at)
    click.echo("")
    for line in summary(tracked, jobs, offsets):
        click.echo(line)
    listing = ", ".join(f"{j.name} ({j.reason})" for j in dead) or "empty"
    click.echo(f"\nDead-letter queue: {listing}")
    return report(check(tracked, jobs, offsets))


def report(problems: Sequence[str]) -> bool:
    """Print the verdict; True when there were no problems."""
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        return False
    click.echo("High-priority jobs ran first although submitted last; flaky succeeded on its 3rd attempt;")
    click.echo("always_fails went straight to the dead-letter queue; the delayed job waited 1.5 s.")
    click.echo("Next: put tasks in a module with `app = Bananas()` and run `bananas worker --app module:app`.")
    return True


@click.command()
@click.option("--url", default=None, hidden=True, help="Use this broker instead of a temporary SQLite file.")
@click.option("--verbose", "-v", is_flag=True, help="Show the worker's logs.")
@click.pass_context
def demo(ctx: click.Context, url: str | None, verbose: bool) -> None:
    """Run everything end to end, no server needed.

    Uses the embedded SQLite broker in a temporary directory.
    """
    env_level = os.environ.get("LOG_LEVEL")
    configure_logging("INFO" if verbose else env_level or "ERROR", os.environ.get("LOG_FORMAT", "text").lower())
    with tempfile.TemporaryDirectory(prefix="bananas-demo-") as tmp:
        target = url or f"sqlite:///{os.path.join(tmp, 'demo.db')}"
        ok = run_demo(demo_settings(target), live=sys.stdout.isatty())
    ctx.exit(0 if ok else 1)
