"""The ``bananas`` command line, run as real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bananas import JobStatus, wire
from bananas.brokers import Outcome, from_url
from bananas.client import Client

ROOT = Path(__file__).resolve().parents[2]


ACCEPTED = "use seconds or a number with ms, s, m, h or d (30s, 5m, 2h, 1d)"


def bananas(
    *args: str, cwd: Path | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k not in ("BANANAS_URL", "REDIS_URL")}, **(env or {})}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bananas", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def test_demo_runs_end_to_end_without_a_server(tmp_path: Path) -> None:
    t0 = time.monotonic()
    done = bananas("demo", cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 30
    out = done.stdout
    assert "sqlite:///" in out
    for name in ("resize_image", "send_email", "flaky", "always_fails"):
        assert name in out
    assert "permanent_error" in out and "completed" in out


def test_submit_then_inspect(broker_url: str) -> None:
    done = bananas("submit", "send_email", "--payload", '{"to": "a@b.c"}', "--priority", "high",
                   "--routing-key", "email", "--url", broker_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert len(job_id) == 26
    shown = bananas("job", job_id, "--json", "--url", broker_url)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["name"] == "send_email" and body["priority"] == 90 and body["routing_key"] == "email"
    assert body["status"] == "pending" and body["payload"] == {"to": "a@b.c"}
    listing = bananas("jobs", "--status", "pending", "--url", broker_url)
    assert job_id in listing.stdout
    queues = bananas("queues", "--url", broker_url)
    assert queues.returncode == 0 and "email" in queues.stdout


def test_bad_input_gets_one_line_errors(broker_url: str) -> None:
    cases = [
        (["--payload", "{nope"], "not valid JSON"),
        (["--payload", "[1]"], "must be a JSON object"),
        (["--payload", "{}", "--priority", "urgent"], "unknown priority 'urgent'"),
        (["--payload", "{}", "--delay", "-1"], "--delay='-1' must be at least 0 seconds"),
        (["--payload", "{}", "--routing-key", "bad key"], "illegal routing key"),
    ]
    for args, message in cases:
        done = bananas("submit", "x", *args, "--url", broker_url)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
    missing = bananas("job", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--url", broker_url)
    assert missing.returncode == 1 and "no job" in missing.stderr


def test_durations_and_log_levels_as_users_write_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bananas.db"
    env = {"JOB_TIMEOUT": "5m", "LOG_LEVEL": "warn", "SCHEDULER_INTERVAL": "500ms", "BANANAS_FAILED_TTL": "30d"}
    listed = bananas("queues", "--url", url, env=env)
    assert listed.returncode == 0, listed.stderr
    done = bananas("submit", "x", "--delay", "2m", "--url", url, env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(bananas("job", done.stdout.strip(), "--json", "--url", url).stdout)
    assert job["timeout"] is None  # no timeout of its own: the running worker's JOB_TIMEOUT applies, not ours
    assert job["scheduled_for"] - job["created_at"] == pytest.approx(120, abs=5)
    done = bananas("submit", "x", "--timeout", "1h", "--url", url, env=env)
    assert json.loads(bananas("job", done.stdout.strip(), "--json", "--url", url).stdout)["timeout"] == 3600.0


def test_a_bad_duration_or_level_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bananas.db"
    app = ("--app", "tests.e2e.app:app")
    cases = [
        (["queues"], {"JOB_TIMEOUT": "5 minutes"}, f"JOB_TIMEOUT='5 minutes' is not a duration: {ACCEPTED}"),
        (["queues"], {"LOG_LEVEL": "loud"},
         "LOG_LEVEL='loud' is not a log level: use debug, info, warning (or warn), error or critical"),
        (["worker", *app], {"BANANAS_FAILED_TTL": "forever"},  # read when the app module makes Bananas()
         f"BANANAS_FAILED_TTL='forever' is not a duration: {ACCEPTED}"),
        (["worker", *app, "--lease", "soon"], {}, f"--lease='soon' is not a duration: {ACCEPTED}"),
        (["worker", *app, "--failed-ttl", "0"], {}, "--failed-ttl='0' must be more than 0 seconds"),
        (["scheduler", "--completed-ttl", "1 hour"], {}, f"--completed-ttl='1 hour' is not a duration: {ACCEPTED}"),
    ]  # fmt: skip
    for args, env, message in cases:
        done = bananas(*args, "--url", url, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {message}\n"), (args, env)


def test_broker_down_is_a_clean_error() -> None:
    done = bananas("submit", "x", "--payload", "{}", "--url", "redis://127.0.0.1:1/0")
    assert done.returncode == 1
    assert "unreachable during submit" in done.stderr and "Traceback" not in done.stderr


async def test_dead_letter_queue_commands(broker_url: str) -> None:
    client = Client(broker_url)
    ids = [client.submit("doomed", {"n": i}) for i in range(3)]
    client.close()
    broker = from_url(broker_url)
    deliveries = await broker.dequeue(["default"], 3, 30, "test")
    await broker.ack(
        [Outcome(d.id, "default", d.token, "failed", 1, error="boom", reason="max_retries") for d in deliveries],
        (3600, 86400),
    )
    listed = bananas("dlq", "list", "--url", broker_url)
    assert listed.returncode == 0 and all(i in listed.stdout for i in ids) and "max_retries" in listed.stdout
    retried = bananas("dlq", "retry", ids[0], "--url", broker_url)
    assert retried.returncode == 0 and "retried 1 job" in retried.stdout
    job = await broker.get_job(ids[0])
    assert job is not None and job.status is JobStatus.PENDING
    purged = bananas("dlq", "purge", "-y", "--url", broker_url)
    assert purged.returncode == 0 and "purged 2 jobs" in purged.stdout
    assert await broker.list_jobs("failed") == []
    assert wire.decode(bananas("job", ids[0], "--json", "--url", broker_url).stdout)["status"] == "pending"
    await broker.close()


def test_queues_are_paused_and_resumed(broker_url: str) -> None:
    paused = bananas("queues", "pause", "reports", "--url", broker_url)
    assert paused.returncode == 0 and paused.stdout.strip() == "reports paused", paused.stderr
    again = bananas("queues", "pause", "reports", "--url", broker_url)
    assert again.stdout.strip() == "reports was already paused"
    listed = bananas("queues", "--url", broker_url)
    assert listed.returncode == 0 and re.search(r"^reports .* paused\s*$", listed.stdout, re.M), listed.stdout
    resumed = bananas("queues", "resume", "reports", "--url", broker_url)
    assert resumed.stdout.strip() == "reports resumed"
    assert re.search(r"^reports .* active\s*$", bananas("queues", "--url", broker_url).stdout, re.M)
    bad = bananas("queues", "pause", "no spaces", "--url", broker_url)
    assert bad.returncode == 2 and "routing key" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_workflows_are_listed_and_drawn(broker_url: str) -> None:
    from bananas import DAG, Bananas, Settings

    app = Bananas(settings=Settings(url=broker_url))

    @app.task
    def fetch(url: str) -> str:
        return url

    @app.task
    def parse(html: str) -> str:
        return html

    dag = DAG("etl")
    root = dag.add(fetch.s(url="x"), id="fetch")
    dag.add(parse.s(html=root.result), id="parse")
    with Client(broker_url, app=app) as client:
        handle = client.submit_workflow(dag)
        root_job = handle.get().nodes[0].job_id
    listing = bananas("workflows", "--url", broker_url)
    assert listing.returncode == 0, listing.stderr
    assert handle.id in listing.stdout and "etl" in listing.stdout and "running" in listing.stdout
    drawn = bananas("workflow", handle.id, "--url", broker_url)
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert lines[0].startswith(f"workflow {handle.id}  etl (dag, on_failure=fail_fast)")
    assert "1 pending, 1 waiting" in lines[1]
    assert "fetch  fetch  pending  job " + root_job in lines[2]
    assert lines[3].startswith("  └ … parse  parse  waiting")
    shown = bananas("job", root_job, "--url", broker_url)
    assert f"{handle.id} (node fetch)" in shown.stdout
    missing = bananas("workflow", "01NOSUCHWORKFLOW0000000000", "--url", broker_url)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: no workflow")
