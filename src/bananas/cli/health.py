"""``bananas health``: ask a worker's /health and /ready, or the broker; non-zero when unhealthy."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import click

from bananas import brokers
from bananas.cli.options import EXIT_FAILURE, DurationType, build_settings, url_option
from bananas.observability.health import broker_ready


def probe(url: str, timeout_s: float) -> tuple[int, dict[str, object]]:
    """GET ``url``; (status, JSON body). Connection failures are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError) as exc:
        return 0, {"status": "unreachable", "error": str(exc)}


@click.command()
@click.option("--endpoint", default=None, metavar="URL", help="A worker's or dashboard's base URL (http://host:port).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Shortcut for --endpoint http://HOST:PORT.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Host for --port.")
@click.option(
    "--timeout", type=DurationType(0.1), default=5.0, show_default=True, metavar="DURATION", help="Time per request."
)
@url_option
@click.pass_context
def health(
    ctx: click.Context, *, endpoint: str | None, port: int | None, host: str, timeout: float, url: str | None
) -> None:
    """Check health; exit 0 when healthy and ready, 1 otherwise.

    With --endpoint or --port (or BANANAS_METRICS_PORT) it asks that process's /health
    (liveness) and /ready (broker reachable, not shutting down). Without them it checks
    that the broker answers.
    """
    settings = build_settings(url)
    port = port or settings.observability.metrics_port
    if endpoint is None and port:
        endpoint = f"http://{host}:{port}"
    if endpoint is None:
        ok, body = asyncio.run(_broker(settings.url, timeout))
        click.echo(json.dumps({"ready": body}, indent=2))
        ctx.exit(0 if ok else EXIT_FAILURE)
    base = endpoint.rstrip("/")
    live_status, live = probe(f"{base}/health", timeout)
    ready_status, ready = probe(f"{base}/ready", timeout)
    click.echo(json.dumps({"health": live, "ready": ready}, indent=2))
    ctx.exit(0 if live_status == 200 and ready_status == 200 else EXIT_FAILURE)


async def _broker(url: str, timeout_s: float) -> tuple[bool, dict[str, object]]:
    broker = brokers.from_url(url, timeout_s=timeout_s)
    try:
        response = await broker_ready(broker)
    finally:
        await broker.close()
    return response.status == 200, json.loads(response.body)
