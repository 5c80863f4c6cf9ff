"""The tasks ``bananas demo`` runs: one of each kind a real application has.

``create_app`` registers them on a fresh app, so the demo can point it at a throw-away
broker; a module of your own would do ``app = Bananas()`` and decorate its handlers.
"""

from __future__ import annotations

import asyncio
import time

from bananas.app import Bananas
from bananas.context import Context
from bananas.errors import PermanentError
from bananas.job import RetryPolicy
from bananas.settings import Settings


def resize_image(ctx: Context, url: str, width: int) -> str:
    """A sync handler (it runs in the worker's thread pool) that reports its progress."""
    for step in range(1, 6):
        time.sleep(0.1)  # the "work"
        ctx.progress(step / 5)
    return f"thumbs/{width}/{url.rsplit('/', 1)[-1]}"


async def send_email(to: str, subject: str, body: str = "") -> dict[str, str]:
    """An async handler: runs on the worker's event loop."""
    await asyncio.sleep(0.3)  # the "SMTP round trip"
    return {"to": to, "status": "sent"}


def flaky(ctx: Context, n: int) -> str:
    """Fails on its first two attempts and succeeds on the third, so it is retried twice.

    It decides from ``ctx.attempt``, which the broker counts, not from process state:
    a retry may run in another worker process.
    """
    if ctx.attempt < 3:
        raise ConnectionError(f"upstream not answering (attempt {ctx.attempt})")
    return f"got {n} on attempt {ctx.attempt}"


def always_fails(reason: str) -> None:
    """Raises ``PermanentError``: dead-lettered at once, never retried."""
    raise PermanentError(reason)


def create_app(settings: Settings) -> Bananas:
    """A new app on ``settings.url`` with the demo tasks registered."""
    app = Bananas(settings=settings)
    app.task()(resize_image)
    app.task()(send_email)
    app.task(max_retries=3, retry=RetryPolicy(base_s=0.3, jitter=0.1))(flaky)
    app.task()(always_fails)
    return app
