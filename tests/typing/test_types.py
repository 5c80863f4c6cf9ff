"""Read by mypy only: the public API's static types.

``mypy --strict`` sets ``warn_unused_ignores``, so each ``# type: ignore[code]`` below is
itself a test: it fails the type check if that line stops being an error.
"""

from __future__ import annotations

from typing import assert_type

from bananas import Bananas, Context, Job, Task


def check() -> None:
    app = Bananas("memory://")

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(priority="high")
    async def fetch(url: str) -> bytes:
        return b""

    @app.task
    def resize(ctx: Context, url: str, width: int = 64) -> str:
        return url

    task: Task[..., bytes] = fetch
    assert_type(task.submit_and_wait(), bytes)
    assert_type(fetch.submit_and_wait(url="u"), bytes)
    assert_type(add.submit(a=1, b=2), str)
    assert_type(add.submit(1, 2), str)
    assert_type(add.submit_and_wait(a=1, b=2), int)
    assert_type(app.client.get_job("x"), Job | None)
    # The Context parameter is not part of what submit takes.
    assert_type(resize.submit(url="u"), str)
    assert_type(resize.options(priority="high", delay=10).submit(url="u", width=32), str)
    assert_type(resize.options(wait_timeout=5).submit_and_wait(url="u"), str)
    assert_type(fetch.options(routing_key="web").submit_and_wait(url="u"), bytes)


def mistakes() -> None:
    app = Bananas("memory://")

    @app.task
    async def send_email(to: str, subject: str, body: str = "") -> dict[str, str]:
        return {}

    @app.task
    def resize(ctx: Context, url: str, width: int) -> str:
        return url

    send_email.submit(to="a@b.c")  # type: ignore[call-arg]
    send_email.submit(to="a@b.c", subject=1)  # type: ignore[arg-type]
    send_email.submit(to="a@b.c", subject="hi", cc="x")  # type: ignore[call-arg]
    send_email.options(priority="high").submit(subject="hi")  # type: ignore[call-arg]
    send_email.options(delay=[10]).submit(to="a@b.c", subject="hi")  # type: ignore[arg-type]
    send_email.options(prio="high")  # type: ignore[call-arg]
    resize.submit(url="u", width="wide")  # type: ignore[arg-type]
    resize.submit(url="u")  # type: ignore[call-arg]
