"""``bananas chaos run EXPERIMENT.toml``: a chaos experiment and its resilience report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from bananas.durations import parse_duration
from bananas.resilience import experiment, html, report, runner


@click.group()
def chaos() -> None:
    """Chaos experiments (docs/CHAOS.md)."""


def _duration(value: str | None, name: str) -> float | None:
    return None if value is None else parse_duration(value, name)


def _scaled(exp: experiment.Experiment, jobs: int | None, duration: str | None, workers: int | None) -> Any:
    changes: dict[str, Any] = {"jobs": jobs, "duration_s": _duration(duration, "--duration"), "workers": workers}
    return dataclasses.replace(exp, **{k: v for k, v in changes.items() if v is not None})


def write(rep: dict[str, Any], out: Path, stem: str) -> tuple[Path, Path]:
    """Write the report as ``stem.json`` and ``stem.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    as_json, as_html = out / f"{stem}.json", out / f"{stem}.html"
    as_json.write_text(json.dumps(rep, indent=1) + "\n")
    as_html.write_text(html.render(rep))
    return as_json, as_html


def _summary(rep: dict[str, Any]) -> str:
    t = rep["totals"]
    lines = [f"{rep['name']}: {'passed' if rep['ok'] else 'FAILED'}: {t['completed']}/{t['submitted']} completed, "
             f"{t['lost']} lost, {t['dead_lettered']} dead-lettered, {t['duplicate_starts']} duplicate starts; "
             f"recovery p50 {rep['recovery_s']['p50']} s, p95 {rep['recovery_s']['p95']} s"]  # fmt: skip
    lines += [f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['actual']} ({c['expected']})" for c in rep["checks"]]
    return "\n".join(lines)


@chaos.command()
@click.argument("experiment_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("chaos-report"),
              show_default=True, help="Where the JSON and HTML reports go.")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=0), help="Override the workload's job count.")
@click.option("--duration", help="Override the duration (30s, 2m).")
@click.option("--workers", type=click.IntRange(min=1), help="Override the number of worker processes.")
@click.option("--continuous", is_flag=True, help="Run until SIGINT, writing a report per --report-every.")
@click.option("--report-every", default="60s", show_default=True, help="With --continuous: the length of one window.")
def run(experiment_file: Path, report_dir: Path, jobs: int | None, duration: str | None, workers: int | None,
        continuous: bool, report_every: str) -> None:  # fmt: skip
    """Run EXPERIMENT_FILE: start the broker and workers it names, submit its workload,
    inject its faults, check the steady state, write a resilience report; exit 1 when a
    check failed."""
    exp = _scaled(experiment.parse(experiment_file.read_text(), str(experiment_file)), jobs, duration, workers)
    if os.environ.pop("BANANAS_CHAOS", None):
        click.echo("BANANAS_CHAOS is ignored by the runner's own client; workers get [workers] chaos", err=True)
    if exp.worker_chaos and not Path(exp.worker_chaos).is_absolute():
        exp = dataclasses.replace(exp, worker_chaos=str((experiment_file.parent / exp.worker_chaos).resolve()))
    if continuous:
        _continuous(dataclasses.replace(exp, duration_s=parse_duration(report_every, "--report-every"),
                                        jobs=max(1, round(exp.rate * parse_duration(report_every, "--report-every")))),
                    report_dir)  # fmt: skip
        return
    rep = _once(exp, report_dir, "report")
    if not rep["ok"]:
        raise click.exceptions.Exit(1)


def _once(exp: experiment.Experiment, out: Path, stem: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bananas-chaos-") as work:
        seen = asyncio.run(runner.run(exp, Path(work), lambda line: click.echo(line, err=True)))
    rep = report.analyse(exp, seen)
    as_json, as_html = write(rep, out, stem)
    click.echo(_summary(rep))
    click.echo(f"report: {as_json} and {as_html}")
    return rep


def _continuous(window: experiment.Experiment, out: Path) -> None:
    """One window after another (a fresh deployment each) until SIGINT or SIGTERM."""
    stop = {"now": False}

    def interrupted(*_: object) -> None:
        stop["now"] = True
        click.echo("stopping after this window", err=True)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    n = 0
    while not stop["now"]:
        n += 1
        _once(window, out, f"report-{n:04d}-{time.strftime('%Y%m%dT%H%M%S')}")
