"""An app with an every-second cron schedule, for the scheduler high-availability test."""

from __future__ import annotations

from bananas import Bananas

app = Bananas()


@app.cron("*/1 * * * * *", id="every-second")
@app.task
async def beat() -> None:
    return None
