"""Core-engine benchmark: enqueue, submit_many, drain and latency against a local Redis.

Run: ``.venv/bin/python -m benchmarks.core [--jobs 20000] [--json out.json] [--sqlite]``

It starts its own redis-server on a free port, so nothing else is disturbed. The
worker runs as a real ``bananas worker`` process. Numbers are jobs/s and milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bananas import Client, JobSpec
from bananas.testing import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def start_worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "bananas", "worker", "--app", "benchmarks.tasks:app", "--url", url, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def limit_one_at_a_time(url: str, n: int) -> float:
    """Ceiling: a hand-written redis-py + hiredis loop, one LPUSH round trip per job."""
    r = redis.Redis.from_url(url)
    body = b'{"name":"noop","payload":{}}'
    t0 = time.perf_counter()
    for _ in range(n):
        r.lpush("limit:queue", body)
    rate = n / (time.perf_counter() - t0)
    r.delete("limit:queue")
    r.close()
    return rate


def limit_pipelined(url: str, n: int, batch: int = 1000) -> float:
    """Ceiling: LPUSH pipelined in batches, one round trip per batch."""
    r = redis.Redis.from_url(url)
    body = b'{"name":"noop","payload":{}}'
    t0 = time.perf_counter()
    for _ in range(n // batch):
        with r.pipeline(transaction=False) as pipe:
            for _ in range(batch):
                pipe.lpush("limit:queue", body)
            pipe.execute()
    rate = (n // batch * batch) / (time.perf_counter() - t0)
    r.delete("limit:queue")
    r.close()
    return rate


def bench_submit(client: Client, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        client.submit("noop", {})
    return n / (time.perf_counter() - t0)


def bench_submit_many(client: Client, n: int, batch: int = 1000) -> float:
    specs = [JobSpec("noop", {}) for _ in range(batch)]
    t0 = time.perf_counter()
    for _ in range(n // batch):
        client.submit_many(specs)
    return (n // batch * batch) / (time.perf_counter() - t0)


def bench_drain(client: Client, url: str, n: int, worker_args: list[str]) -> float:
    ids = client.submit_many([JobSpec("noop", {}) for _ in range(n)])
    proc = start_worker(url, *worker_args)
    try:
        first = client.wait(ids[0], 60)
        last = client.wait(ids[-1], 300)
        for job_id in ids[-50:]:
            client.wait(job_id, 60)
    finally:
        stop(proc)
    assert first.started_at is not None and last.finished_at is not None
    return n / (last.finished_at - first.started_at)


def bench_latency(client: Client, url: str, rate: float, seconds: float) -> dict[str, float]:
    proc = start_worker(url, "--concurrency", "10")
    try:
        client.submit_and_wait("noop", {}, timeout=30)  # the worker is up and idle
        time.sleep(0.5)
        ids: list[str] = []
        interval = 1.0 / rate
        t_next = time.perf_counter()
        for _ in range(int(rate * seconds)):
            t_next += interval
            ids.append(client.submit("stamp", {}))
            pause = t_next - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        latencies = []
        for job_id in ids:
            job = client.wait(job_id, 30)
            latencies.append((job.result - job.created_at) * 1000)
    finally:
        stop(proc)
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(len(latencies) * 0.95)],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "max_ms": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sqlite", action="store_true", help="also drain on the SQLite broker")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            client = Client(server.url)
            flush = server.client()
            results["limit_one_round_trip_per_job_per_s"] = limit_one_at_a_time(server.url, args.jobs)
            results["limit_pipelined_per_s"] = limit_pipelined(server.url, args.jobs * 5)
            results["submit_one_at_a_time_per_s"] = bench_submit(client, args.jobs)
            flush.flushall()
            results["submit_many_per_s"] = bench_submit_many(client, args.jobs * 5)
            flush.flushall()
            results["drain_1_process_per_s"] = bench_drain(client, server.url, args.jobs, ["--concurrency", "100"])
            flush.flushall()
            results["latency_200_per_s"] = bench_latency(client, server.url, 200, 5)
            client.close()
        finally:
            server.kill()
        if args.sqlite:
            url = f"sqlite:///{tmp}/bench.db"
            client = Client(url)
            results["sqlite_drain_1_process_per_s"] = bench_drain(client, url, args.jobs // 2, ["--concurrency", "100"])
            client.close()
    results["ratios"] = {
        "submit_vs_one_round_trip_limit": results["submit_one_at_a_time_per_s"]
        / results["limit_one_round_trip_per_job_per_s"],
        "submit_many_vs_pipelined_limit": results["submit_many_per_s"] / results["limit_pipelined_per_s"],
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
