"""Read by mypy only: the public API's static types."""

from __future__ import annotations

from typing import assert_type

from bananas import Bananas, Job, Task


def check() -> None:
    app = Bananas("memory://")

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(priority="high")
    async def fetch(url: str) -> bytes:
        return b""

    task: Task[..., bytes] = fetch
    assert_type(task.submit_and_wait(), bytes)
    assert_type(fetch.submit_and_wait(url="u"), bytes)
    assert_type(add.submit(a=1, b=2), str)
    assert_type(add.submit_and_wait(a=1, b=2), int)
    assert_type(app.client.get_job("x"), Job | None)
