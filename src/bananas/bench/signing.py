"""Signing scenario: what BANANAS_SIGNING_KEYS costs, signed against unsigned in one run.

Each round submits with ``submit_many`` and drains with one worker process, first without
keys and then with them; the best round of each is kept, and the report shows the signed
rates as ratios of the unsigned ones (signing costs one HMAC-SHA256 per job on each side).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from bananas import Client
from bananas.bench.drain import drain
from bananas.bench.enqueue import submit_in_batches
from bananas.settings import Settings, SigningSettings

KEY = "bench-signing-key-0123456789abcdef"


def run_signing(url: str, jobs: int, flush: Callable[[], Any], rounds: int) -> dict[str, Any]:
    """Best of ``rounds`` for submit and drain, unsigned then signed, alternating."""
    signed_settings = dataclasses.replace(Settings(url=url), signing=SigningSettings((KEY,)))
    best: dict[str, float] = {}
    with Client(url) as plain, Client(url, settings=signed_settings) as signed:
        for _ in range(max(1, rounds)):
            for label, client, env in (("", plain, None), ("_signed", signed, {"BANANAS_SIGNING_KEYS": KEY})):
                submitted = submit_in_batches(client, jobs * 5)
                flush()
                drained = drain(client, url, jobs, ("1 process x 100", 100, None), env=env)
                flush()
                for key, rate in ((f"submit_many{label}_per_s", submitted), (f"drain{label}_per_s", drained)):
                    best[key] = max(best.get(key, 0.0), rate)
    return best
