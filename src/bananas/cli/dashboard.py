"""``bananas dashboard [--port 8080] [--host 127.0.0.1]``: serve the dashboard with uvicorn.

So far the dashboard is its HTTP API (``/health``, ``/ready``, ``/metrics``,
``/api/queues``, ``/api/jobs/ID``; see ``bananas.dashboard.app``); the web UI comes later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from bananas.cli.observe import tracing
from bananas.cli.options import CLIError, build_settings, url_option
from bananas.client import AsyncClient
from bananas.dashboard import MISSING_EXTRA
from bananas.envvars import redact_url
from bananas.errors import MissingDependencyError
from bananas.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

logger = logging.getLogger(__name__)

#: Longest uvicorn waits for open requests when stopping.
GRACEFUL_SHUTDOWN_S = 5


def with_address(settings: Settings, host: str | None, port: int | None) -> Settings:
    """``--host``/``--port`` override BANANAS_DASHBOARD_HOST/_PORT."""
    given = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = dataclasses.replace(settings, dashboard=dataclasses.replace(settings.dashboard, **given))  # type: ignore[arg-type]
    settings.validate()
    return settings


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so a port in use is a one-line error before
    anything starts (uvicorn would log it and exit from inside its startup).

    Raises:
        CLIError: the address cannot be bound (in use, not this machine's, no permission).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CLIError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CLIError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def load_dashboard() -> Callable[[AsyncClient], Starlette]:
    """``create_app``, once the ``dashboard`` extra is known to be installed.

    Raises:
        MissingDependencyError: naming ``pip install "bananas[dashboard]"``.
    """
    from bananas.dashboard.app import create_app  # raises MissingDependencyError without starlette

    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError(MISSING_EXTRA) from None
    return create_app


async def serve(settings: Settings, sock: socket.socket, create_app: Callable[[AsyncClient], Starlette]) -> None:
    """Serve the dashboard on ``sock`` until SIGTERM/SIGINT."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    client = AsyncClient(settings.url, settings=settings)
    config = uvicorn.Config(
        create_app(client), host=host, port=port, log_config=None, access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )  # fmt: skip
    server = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn swaps in its own handlers while serving and, once stopped, raises the signal
    # again under the previous ones: these, so the process leaves through the finally
    # blocks (client closed, spans flushed) instead of being killed by the default action.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    broker = redact_url(settings.url)
    logger.info("dashboard on http://%s:%d, broker %s", host, port, broker, extra={"component": "api"})
    try:
        await server.serve(sockets=[sock])
    finally:
        await client.close()
        logger.info("dashboard stopped", extra={"component": "api"})


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port [default: 8080, env BANANAS_DASHBOARD_PORT]."
)
@click.option("--host", default=None, help="Interface to bind [default: 127.0.0.1, env BANANAS_DASHBOARD_HOST].")
@url_option
def dashboard(port: int | None, host: str | None, url: str | None) -> None:
    """Serve the dashboard's HTTP API until SIGTERM/SIGINT.

    GET /health (liveness), /ready (broker reachable), /metrics (Prometheus queue
    gauges), /api/queues and /api/jobs/ID (JSON). The web UI is a later issue.
    Needs the dashboard extra: pip install "bananas[dashboard]".
    """
    settings = with_address(build_settings(url), host, port)
    create_app = load_dashboard()
    sock = bind(settings.dashboard.host, settings.dashboard.port)
    with sock, tracing(settings):
        asyncio.run(serve(settings, sock, create_app))
