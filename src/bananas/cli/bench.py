"""``bananas bench``: run the benchmark scenarios against a local redis-server it starts."""

from __future__ import annotations

from pathlib import Path

import click

from bananas.bench.report import errors, table, write_json
from bananas.bench.runner import SCENARIOS, BenchConfig, run


@click.command()
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(SCENARIOS),
    help="Run only this scenario (repeatable) [default: all].",
)
@click.option("--jobs", type=click.IntRange(min=10), default=None, metavar="N", help="Jobs per part [20000].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JSON here.")
@click.option(
    "--rounds", type=click.IntRange(min=1), default=None, metavar="N", help="Rounds of the io scenario, medians [3]."
)
@click.option("--quick", is_flag=True, help="Tiny sizes: a smoke run whose numbers mean nothing.")
def bench(
    scenarios: tuple[str, ...], jobs: int | None, json_path: Path | None, rounds: int | None, quick: bool
) -> None:
    """Benchmark Bananas against a throwaway local redis-server (needs redis-server).

    Workers are real `bananas worker` processes running no-op jobs. Every figure is
    also shown as a fraction of the matching hand-written redis-py ceiling (`limit`);
    the `io` scenario's jobs do one Redis round trip each, against a body-only ceiling
    (the same body, 2 processes x 100 coroutines, no queue) measured in the same run.
    """
    chosen = scenarios or SCENARIOS
    if "limit" not in chosen and any(s in chosen for s in ("enqueue", "drain", "payloads")):
        chosen = ("limit", *chosen)
    ordered = tuple(s for s in SCENARIOS if s in chosen)

    def progress(name: str) -> None:
        click.echo(f"running {name} ...", err=True)

    if quick:
        config = BenchConfig.quick_config(ordered, jobs or 300)
    else:
        config = BenchConfig(scenarios=ordered, jobs=jobs or 20_000)
    config = BenchConfig(**{**config.__dict__, "progress": progress, "rounds": rounds or config.rounds})
    results = run(config)
    click.echo(table(results))
    if json_path is not None:
        write_json(results, json_path)
        click.echo(f"results written to {json_path}", err=True)
    if errors(results):
        raise SystemExit(1)
