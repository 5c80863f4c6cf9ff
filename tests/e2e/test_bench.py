"""``bananas bench --quick``: every scenario runs and lands in the JSON (numbers unchecked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bananas.bench.runner import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        shutil.which("redis-server") is None and os.environ.get("CI") != "true", reason="redis-server is not installed"
    ),
]


def test_quick_bench_writes_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in ("BANANAS_URL", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bananas", "bench", "--quick", "--jobs", "200", "--json", str(out)],
        capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    for name in SCENARIOS:
        assert name in results, name
    assert results["environment"]["cpus"] >= 1
    assert results["drain"]["one_process_per_s"] > 0
    assert results["latency"]["200_per_s"]["submit_to_start"]["samples"] > 0
    assert set(results["depth"]) == {"100", "1000"}
    assert "one at a time" in done.stdout and "of limit" in done.stdout
