"""``bananas schedules list|enable|disable|run-now``: cron schedules and their state."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import click

from bananas import brokers
from bananas.brokers.base import Fire, ScheduleState
from bananas.cli.options import CLIError, build_settings, load_app, url_option
from bananas.client import AsyncClient, JobSpec
from bananas.schedule import Schedule
from bananas.settings import Settings


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _definition(st: ScheduleState) -> Schedule | None:
    return Schedule.from_json(st.id, st.definition) if st.definition else None


async def _states(settings: Settings) -> list[ScheduleState]:
    broker = brokers.from_url(settings.url)
    try:
        return await broker.schedule_states()
    finally:
        await broker.close()


@click.group()
def schedules() -> None:
    """Cron schedules: list them, enable or disable one, run one now."""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@url_option
def list_schedules(as_json: bool, url: str | None) -> None:
    """Every schedule a scheduler has registered, with its state."""
    rows = []
    for st in asyncio.run(_states(build_settings(url))):
        d = _definition(st)
        enabled = st.enabled if st.enabled is not None else (d.enabled if d else True)
        rows.append({
            "id": st.id, "task": d.task if d else None, "cron": d.cron if d else None, "tz": d.tz if d else None,
            "enabled": enabled, "next_run": st.next_run, "last_run": st.last_run, "run_count": st.run_count,
            "last_success": st.last_success, "last_error": st.last_error,
        })  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':<24} {'TASK':<20} {'CRON':<18} {'TZ':<18} {'ON':<4} {'NEXT RUN (UTC)':<20} {'RUNS':>6}  LAST")
    for r in rows:
        last = f"error: {r['last_error']}" if r["last_error"] else _when(r["last_run"])  # type: ignore[arg-type]
        click.echo(
            f"{r['id']!s:<24} {r['task']!s:<20} {r['cron']!s:<18} {r['tz']!s:<18} {'yes' if r['enabled'] else 'no':<4} "
            f"{_when(r['next_run']):<20} {r['run_count']!s:>6}  {last}"  # type: ignore[arg-type]
        )


def _set_enabled(schedule_id: str, url: str | None, enabled: bool) -> None:
    settings = build_settings(url)

    async def run() -> None:
        broker = brokers.from_url(settings.url)
        try:
            if schedule_id not in {st.id for st in await broker.schedule_states()}:
                raise CLIError(f"no schedule {schedule_id!r} (a scheduler registers schedules when it starts)")
            await broker.update_schedule(schedule_id, {"enabled": enabled})
        finally:
            await broker.close()

    asyncio.run(run())
    click.echo(f"{schedule_id} {'enabled' if enabled else 'disabled'}")


@schedules.command()
@click.argument("schedule_id")
@url_option
def enable(schedule_id: str, url: str | None) -> None:
    """Enable a schedule (its ticks from now on fire)."""
    _set_enabled(schedule_id, url, True)


@schedules.command()
@click.argument("schedule_id")
@url_option
def disable(schedule_id: str, url: str | None) -> None:
    """Disable a schedule (no tick fires until it is enabled again; missed ones are not owed)."""
    _set_enabled(schedule_id, url, False)


@schedules.command("run-now")
@click.argument("schedule_id")
@click.option("--app", "app_ref", default=None, metavar="MODULE:ATTR", help="Check the payload against the app.")
@url_option
def run_now(schedule_id: str, app_ref: str | None, url: str | None) -> None:
    """Submit the schedule's job now (counted in its state; its cron ticks are unchanged)."""
    app = load_app(app_ref) if app_ref else None
    settings = build_settings(url, app)

    async def run() -> str:
        broker = brokers.from_url(settings.url)
        try:
            found = {st.id: st for st in await broker.schedule_states()}.get(schedule_id)
            schedule = (app.schedules.get(schedule_id) if app else None) or (_definition(found) if found else None)
            if schedule is None:
                raise CLIError(f"no schedule {schedule_id!r}")
            client = AsyncClient(broker=broker, settings=settings, app=app)
            now = time.time()
            job, body = client.build(
                JobSpec(schedule.task, dict(schedule.payload), priority=schedule.priority,
                        routing_key=schedule.routing_key, description=schedule.description or f"cron {schedule.id}",
                        headers={"bananas-schedule": schedule.id, "bananas-tick": repr(now), "bananas-manual": "1"})
            )  # fmt: skip
            await broker.fire_schedule([Fire(schedule.id, now, job, body, None)], None)
            return job.id
        finally:
            await broker.close()

    click.echo(asyncio.run(run()))
