"""``bananas job ID``: one job's fields, readable or as wire JSON."""

from __future__ import annotations

import click
import msgspec

from bananas import wire
from bananas.cli.options import build_settings, url_option
from bananas.cli.output import echo_job
from bananas.client import Client
from bananas.errors import JobNotFound


@click.command()
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the job as wire-format JSON.")
@url_option
def job(job_id: str, as_json: bool, url: str | None) -> None:
    """Show one job: status, attempts, result or error.

    The traceback of the last failure is printed at the end.
    """
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        found = client.get_job(job_id)
    if found is None:
        raise JobNotFound(f"no job {job_id!r} (unknown, or its record expired)")
    if as_json:
        click.echo(msgspec.json.format(wire.encode(found), indent=2).decode())
    else:
        echo_job(found)
