"""Bananas side by side with Celery, RQ, Dramatiq, arq, Huey, SAQ and taskiq.

Run from the repository root with the main venv:

    .venv/bin/python -m benchmarks.compare.run [--jobs 20000] [--peers rq,celery] [--json out.json]

It creates ``benchmarks/compare/.venv`` with the peers from PyPI on first use, starts one
throwaway redis-server, and in the same run measures enqueue (one at a time), drain
(jobs whose body is one Redis ``INCR``; a peer's best 2-core configuration; Bananas 2
processes x 100, median of ``--rounds``, beside the body-only ceiling: the same body, 2
processes x 100 coroutines, no queue) and latency (200 jobs/s, submit -> handler start)
for Bananas and for each peer, printing Bananas ÷ peer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bananas import Client
from bananas.bench.enqueue import submit_in_batches, submit_one_at_a_time
from bananas.bench.io import run_io
from bananas.bench.latency import run_latency
from bananas.testing import RedisServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = HERE / ".venv"
PEERS = ("celery", "rq", "dramatiq", "arq", "huey", "saq", "taskiq")


def ensure_venv() -> Path:
    """The peers' venv, made on first use; a venv whose install did not finish is redone."""
    python = VENV / "bin" / "python"
    done = VENV / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        # A current pip: the one a new venv brings backtracks for long over the peers' pins.
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")], check=True)
        done.touch()
    return python


def peer_versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "('celery','rq','dramatiq','arq','huey','saq','taskiq','taskiq-redis','redis','hiredis')}))")  # fmt: skip
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def run_peer(python: Path, url: str, peer: str, scenario: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    cmd = [str(python), "-m", "benchmarks.compare.peer", peer, scenario, *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bananas_side(url: str, jobs: int, seconds: float, rounds: int) -> dict[str, Any]:
    flush = RedisFlush(url)
    with Client(url) as client:
        out: dict[str, Any] = {"enqueue": {"one_at_a_time_per_s": submit_one_at_a_time(client, jobs)}}
        flush()
        out["enqueue"]["batch_per_s"] = submit_in_batches(client, jobs * 5)
        flush()
        io = run_io(client, url, jobs, flush, rounds)
        out["drain"] = {"per_s": io["two_core_per_s"], "ceiling_per_s": io["ceiling_per_s"], "io": io}
        flush()
        lat = run_latency(client, url, (200.0,), seconds)["200_per_s"]["submit_to_start"]
        out["latency"] = lat
        flush()
    return out


class RedisFlush:
    def __init__(self, url: str) -> None:
        import redis

        self._r = redis.Redis.from_url(url)

    def __call__(self) -> None:
        self._r.flushall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--rounds", type=int, default=3, help="Bananas drain rounds (median)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    python = ensure_venv()
    results: dict[str, Any] = {"versions": peer_versions(python), "jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            print("running bananas ...", file=sys.stderr)
            results["bananas"] = bananas_side(server.url, args.jobs, args.seconds, args.rounds)
            for peer in args.peers.split(","):
                print(f"running {peer} ...", file=sys.stderr)
                results[peer] = {
                    "enqueue": run_peer(python, server.url, peer, "enqueue", "--jobs", str(args.jobs)),
                    "drain": run_peer(python, server.url, peer, "drain", "--jobs", str(args.jobs)),
                    "latency": run_peer(python, server.url, peer, "latency", "--seconds", str(args.seconds)),
                }
        finally:
            server.kill()
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def render(results: dict[str, Any]) -> str:
    """One line per system: figures and Bananas ÷ peer."""
    b = results["bananas"]
    ceiling = b["drain"].get("ceiling_per_s")
    head = f"{'system':10} {'enqueue/s':>10} {'batch/s':>10} {'drain/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    lines = [head + "   bananas ÷ peer: enqueue  drain  p50 (peer÷bananas)", "-" * len(head)]
    for name in ("bananas", *[k for k in results if k in PEERS]):
        r = results[name]
        enq, batch = r["enqueue"].get("one_at_a_time_per_s"), r["enqueue"].get("batch_per_s")
        dr, p50, p99 = r["drain"].get("per_s"), r["latency"].get("p50_ms"), r["latency"].get("p99_ms")
        cells = [_f(enq), _f(batch), _f(dr), _f(p50, 2), _f(p99, 2)]
        line = f"{name:10} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {cells[3]:>8} {cells[4]:>8}"
        if name != "bananas":
            ratios = [_ratio(b["enqueue"]["one_at_a_time_per_s"], enq), _ratio(b["drain"]["per_s"], dr),
                      _ratio(p50, b["latency"]["p50_ms"])]  # fmt: skip
            line += "   " + "  ".join(f"{x:>7}" for x in ratios)
            errors = [v["error"] for v in r.values() if isinstance(v, dict) and "error" in v]
            if errors:
                line += f"   ({errors[0][:60]})"
        lines.append(line)
    if ceiling:
        share = b["drain"]["per_s"] / ceiling
        lines.append(f"drain body-only ceiling (2 x 100 coroutines, no queue): {ceiling:,.0f}/s; Bananas {share:.2f}")
    return "\n".join(lines)


def _f(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.1f}x"


if __name__ == "__main__":
    main()
