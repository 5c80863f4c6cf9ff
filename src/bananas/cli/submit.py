"""``bananas submit NAME --payload JSON``: submit one job and print its id."""

from __future__ import annotations

import json
from typing import Any

import click

from bananas.cli.observe import tracing
from bananas.cli.options import DURATION, POSITIVE_DURATION, BadInput, build_settings, load_app, url_option
from bananas.client import Client
from bananas.observability import default_middleware


def parse_payload(text: str) -> dict[str, Any]:
    """Decode ``--payload``; it must be a JSON object.

    Raises:
        BadInput: not JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadInput(f'--payload must be a JSON object like \'{{"to": "a@b.c"}}\', got {text!r}')
    return value


@click.command()
@click.argument("name")
@click.option("--payload", default="{}", show_default=True, metavar="JSON", help="The payload, a JSON object.")
@click.option("--priority", default=None, metavar="P", help="high, normal, low or an int 0..100 [default: the task's].")
@click.option("--routing-key", default=None, metavar="K", help="Queue to submit to [default: the task's, or default].")
@click.option(
    "--delay", type=DURATION, default=None, metavar="DURATION", help="Run no earlier than this from now (10s, 5m, 2h)."
)
@click.option("--max-retries", type=int, default=None, metavar="N", help="Retries after the first attempt.")
@click.option(
    "--timeout", type=POSITIVE_DURATION, default=None, metavar="DURATION", help="How long one attempt may run (30s)."
)
@click.option("--description", default="", help="Free text shown by `bananas job`.")
@click.option("--app", "app_ref", default=None, metavar="MODULE:ATTR", help="Check the payload against this app first.")
@url_option
def submit(
    *,
    name: str,
    payload: str,
    priority: str | None,
    routing_key: str | None,
    delay: float | None,
    max_retries: int | None,
    timeout: float | None,
    description: str,
    app_ref: str | None,
    url: str | None,
) -> None:
    """Submit a job NAME and print its id."""
    data = parse_payload(payload)
    app = load_app(app_ref) if app_ref else None
    settings = build_settings(url, app)
    middleware = None if app is not None else default_middleware(settings)  # an app brings its own
    with tracing(settings), Client(settings.url, settings=settings, app=app, middleware=middleware) as client:
        job_id = client.submit(
            name, data, priority=priority, routing_key=routing_key, delay=delay,
            max_retries=max_retries, timeout=timeout, description=description,
        )  # fmt: skip
    click.echo(job_id)
