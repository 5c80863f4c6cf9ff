"""``bananas chaos run``: short versions of the experiments in examples/chaos, run through
the command line, pass their checks and write their reports; a failing check exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, WorkerProcess

pytestmark = pytest.mark.redis

EXAMPLES = ROOT / "examples" / "chaos"


def chaos_run(experiment: Path, out: Path, *scale: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bananas", "chaos", "run", str(experiment), "--report-dir", str(out), *scale],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return done, report


def assert_page(out: Path, report: dict[str, Any], plots: int = 5) -> None:
    """Four series and one or two histograms (worker recovery only after kills)."""
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == plots, page[:300]
    assert "<script" not in page and "http" not in page.split("<details>")[0]  # self-contained
    assert f"{report['name']}: " in page


def test_a_poison_job_is_dead_lettered_alone(tmp_path: Path) -> None:
    done, report = chaos_run(EXAMPLES / "poison.toml", tmp_path, "--jobs", "300", "--duration", "4s")
    assert done.returncode == 0, done.stdout + done.stderr
    t = report["totals"]
    assert (t["submitted"], t["completed"], t["lost"], t["poison_dead_lettered"]) == (300, 300, 0, 1), t
    assert report["ok"] and all(c["ok"] for c in report["checks"])
    assert_page(tmp_path, report)


def test_sigkilled_workers_lose_nothing(tmp_path: Path) -> None:
    done, report = chaos_run(EXAMPLES / "kill-workers.toml", tmp_path, "--jobs", "1000", "--duration", "10s")
    assert done.returncode == 0, done.stdout + done.stderr
    t = report["totals"]
    assert (t["completed"], t["lost"], t["duplicates_without_later_delivery"]) == (1000, 0, 0), t
    assert report["faults"]["kills"] >= 3
    assert report["worker_recovery_s"]["count"] == report["faults"]["kills"]
    assert report["recovery_s"]["count"] == t["duplicate_starts"]
    assert report["settle_s"] is not None and report["settle_s"] <= 60
    assert_page(tmp_path, report, plots=6)


def test_partitions_and_a_broker_restart_lose_nothing(tmp_path: Path) -> None:
    done, report = chaos_run(EXAMPLES / "partition.toml", tmp_path, "--jobs", "400", "--duration", "16s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (report["faults"]["partitions"], report["faults"]["broker_restarts"]) == (1, 1), report["faults"]
    assert (report["totals"]["completed"], report["totals"]["lost"]) == (400, 0), report["totals"]
    assert_page(tmp_path, report)


def test_a_failed_check_exits_1_and_says_which(tmp_path: Path) -> None:
    (tmp_path / "fail.toml").write_text('environments = ["chaos"]\nfailure_rate = 1.0\n')
    experiment = tmp_path / "experiment.toml"
    experiment.write_text('name = "always-failing"\nduration = "2s"\n[workload]\njobs = 20\nsleep = ["1ms", "2ms"]\n'
                          '[workers]\nstart = 1\nchaos = "fail.toml"\n')  # fmt: skip
    done, report = chaos_run(experiment, tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    failed = {c["check"] for c in report["checks"] if not c["ok"]}
    assert failed == {"success rate", "ordinary jobs dead-lettered"}, report["checks"]
    assert report["totals"]["dead_lettered"] == 20 and "FAIL success rate" in done.stdout


def test_an_experiment_against_workers_already_running(
    redis_url: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    worker = spawn_worker(redis_url, app="bananas.resilience.workload:app", env={"BANANAS_LEDGER": str(ledger)})
    experiment = tmp_path / "running.toml"
    experiment.write_text(f'name = "running"\nurl = "{redis_url}"\nduration = "2s"\n[workload]\njobs = 100\n'
                          f'sleep = ["1ms", "5ms"]\n[workers]\nstart = 0\nledger = "{ledger}"\n')  # fmt: skip
    done, report = chaos_run(experiment, tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (report["totals"]["completed"], report["totals"]["lost"]) == (100, 0), report["totals"]
    assert sum(p[1] for p in report["series"]["throughput"]) == 100  # ended runs, from the outside ledger
    assert worker.alive()  # the runner left the workers it did not start alone


def test_workers_that_cannot_start_end_the_run_with_their_output(tmp_path: Path) -> None:
    experiment = tmp_path / "bad.toml"
    experiment.write_text(
        'duration = "1s"\n[workload]\njobs = 5\n[workers]\nstart = 1\nargs = ["--concurrency", "0"]\n'
    )
    done, report = chaos_run(experiment, tmp_path / "out")
    assert done.returncode == 2 and report == {}, done
    assert done.stderr.startswith("error: worker 0 did not start ([workers] args?); its output:")
    assert "Invalid value for '--concurrency'" in done.stderr and "Traceback" not in done.stderr
