"""Results as table rows (value, fraction of the ceiling, target) and as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    scenario: str
    metric: str
    value: float
    unit: str
    of_limit: float | None = None  # value as a fraction of the matching ceiling
    target: str = ""
    ok: bool | None = None  # whether the target is met (None: no target)


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _ratio(value: float | None, limit: float | None) -> float | None:
    return value / limit if value is not None and limit else None


def rows(results: dict[str, Any]) -> list[Row]:
    """Every figure of a run, with ratios to the ``limit`` ceilings and the targets
    (a scenario that failed is left out here; ``errors`` lists it)."""
    results = {k: v for k, v in results.items() if not (isinstance(v, dict) and "error" in v)}
    push1, push_n = _get(results, "limit", "push_one_per_s"), _get(results, "limit", "push_pipelined_per_s")
    pop_n = _get(results, "limit", "pop_pipelined_per_s")
    out: list[Row] = []
    for key, unit in (("push_one_per_s", "jobs/s"), ("push_pipelined_per_s", "jobs/s"), ("pop_one_per_s", "jobs/s"),
                      ("pop_pipelined_per_s", "jobs/s"), ("round_trip_us", "µs")):  # fmt: skip
        if (v := _get(results, "limit", key)) is not None:
            out.append(Row("limit", key, v, unit))
    if (e := results.get("enqueue")) is not None:
        v = e["one_at_a_time_per_s"]
        ratio = _ratio(v, push1)
        ok = None if ratio is None else ratio >= 0.85
        out.append(Row("enqueue", "one at a time", v, "jobs/s", ratio, "≥ 0.85 of limit", ok))
        u, r = e["unique_one_at_a_time_per_s"], e["unique_vs_plain_submit"]
        out.append(Row("enqueue", "one at a time, each with a unique_key", u, "jobs/s"))
        out.append(Row("enqueue", "unique_key submit / plain submit", r, "x", None, "≥ 0.8", r >= 0.8))
        v = e["submit_many_per_s"]
        out.append(Row("enqueue", "submit_many x1000", v, "jobs/s", _ratio(v, push_n), "≥ 100,000", v >= 100_000))
        v = e["async_100_submitters_per_s"]
        out.append(
            Row("enqueue", "AsyncClient, 100 submitters", v, "jobs/s", _ratio(v, push1), "≥ 30,000", v >= 30_000)
        )
    if (d := results.get("drain")) is not None:
        v = d["one_process_per_s"]
        out.append(Row("drain", "1 worker process", v, "jobs/s", _ratio(v, pop_n), "≥ 12,000", v >= 12_000))
        for label, v in d["two_core_configs"].items():
            out.append(Row("drain", label, v, "jobs/s", _ratio(v, pop_n)))
        v = d["best_two_core_per_s"]
        out.append(Row("drain", "best on 2 cores", v, "jobs/s", _ratio(v, pop_n), "≥ 20,000", v >= 20_000))
    if (io := results.get("io")) is not None:
        c, v = io["ceiling_per_s"], io["two_core_per_s"]
        rounds = f"median of {io['rounds']}"
        out.append(Row("io", f"body-only ceiling, 2 x 100 ({rounds})", c, "jobs/s"))
        out.append(Row("io", f"2 processes x 100 ({rounds})", v, "jobs/s", v / c, "≥ 0.7 of ceiling", v / c >= 0.7))
    out += _latency_rows(results)
    out += _other_rows(results, push1, push_n)
    return out


def _latency_rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for label, part in (results.get("latency") or {}).items():
        rate = part["rate_per_s"]
        for kind in ("submit_to_start", "submit_to_visible"):
            for q in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
                v = part[kind][q]
                target, ok = "", None
                if kind == "submit_to_start" and rate == 200 and q in ("p50_ms", "p99_ms"):
                    bound = 0.6 if q == "p50_ms" else 1.2
                    target, ok = f"≤ {bound} ms", v <= bound
                elif kind == "submit_to_start" and rate == 2000 and q == "p99_ms":
                    target, ok = "≤ 5 ms", v <= 5
                out.append(Row("latency", f"{label} {kind.replace('_', ' ')} {q[:-3]}", v, "ms", None, target, ok))
    return out


def _other_rows(results: dict[str, Any], push1: float | None, push_n: float | None) -> list[Row]:
    out: list[Row] = []
    if (i := results.get("idle")) is not None:
        out.append(
            Row("idle", "commands per second", i["commands_per_s"], "cmd/s", None, "≤ 1", i["commands_per_s"] <= 1)
        )
        out.append(Row("idle", "CPU", i["cpu_percent"], "%"))
        out.append(Row("idle", "RSS", i["rss_mib"], "MiB", None, "≤ 40", i["rss_mib"] <= 40))
    if (m := results.get("memory")) is not None:
        g = m["growth_percent"]
        out.append(Row("memory", f"RSS after {m['after_jobs']:,} jobs", m["after_rss_mib"], "MiB"))
        out.append(Row("memory", "growth", g, "%", None, "≤ 10", g <= 10))
    for size, p in (results.get("payloads") or {}).items():
        out.append(Row("payloads", f"{size} one at a time", p["one_at_a_time_per_s"], "jobs/s",
                       _ratio(p["one_at_a_time_per_s"], push1)))  # fmt: skip
        out.append(Row("payloads", f"{size} submit_many", p["submit_many_per_s"], "jobs/s",
                       _ratio(p["submit_many_per_s"], push_n)))  # fmt: skip
        out.append(Row("payloads", f"{size} drain, 1 process", p["drain_one_process_per_s"], "jobs/s"))
    for depth, p in (results.get("depth") or {}).items():
        out.append(Row("depth", f"dequeue, {int(depth):,} waiting (client)", p["client_us"], "µs"))
        out.append(Row("depth", f"dequeue, {int(depth):,} waiting (in Redis)", p["server_us"], "µs"))
    if (sg := results.get("signing")) is not None:
        for what in ("submit_many", "drain"):
            v = sg[f"{what}_signed_per_s"]
            out.append(
                Row("signing", f"{what} signed (ratio: to unsigned)", v, "jobs/s", _ratio(v, sg[f"{what}_per_s"]))
            )
    out += _workflow_rows(results.get("workflows"))
    if (s := results.get("sqlite")) is not None:
        v = s["drain_one_process_per_s"]
        out.append(Row("sqlite", "drain, 1 worker process", v, "jobs/s", None, "≥ 5,000", v >= 5_000))
    return out


def _workflow_rows(w: dict[str, Any] | None) -> list[Row]:
    """The workflow scenario: member cost and submit cost against plain jobs, chain steps."""
    if w is None:
        return []
    cost, step = w["chord_member_cost_vs_plain_job"], w["chain_step_latency_ms"]
    return [
        Row("workflows", f"plain jobs, drain ({w['rounds']} rounds)", w["plain_jobs_per_s"], "jobs/s"),
        Row("workflows", f"{w['members']:,}-member chord, drain", w["chord_members_per_s"], "members/s"),
        Row("workflows", "chord member cost / plain job", cost, "x", None, "≤ 1.5", cost <= 1.5),
        Row("workflows", "chord with its callback / plain job", w["chord_with_callback_cost_vs_plain_job"], "x"),
        Row("workflows", "chord submit / plain submit_many", w["chord_submit_vs_plain_submit"], "x"),
        Row("workflows", f"chain step latency p50 ({w['chain_steps']} steps)", step["p50"], "ms", None, "≤ 1",
            step["p50"] <= 1),
        Row("workflows", "chain step latency p99", step["p99"], "ms"),
    ]  # fmt: skip


def errors(results: dict[str, Any]) -> list[str]:
    """``scenario: error`` for each scenario that failed."""
    return [f"{k}: {v['error']}" for k, v in results.items() if isinstance(v, dict) and "error" in v]


def table(results: dict[str, Any]) -> str:
    """A plain-text table of ``rows(results)``."""
    head = ("scenario", "metric", "value", "unit", "of limit", "target", "")
    lines = [head]
    for r in rows(results):
        value = f"{r.value:,.0f}" if abs(r.value) >= 100 else f"{r.value:.3g}"
        of_limit = f"{r.of_limit:.2f}" if r.of_limit is not None else ""
        mark = "" if r.ok is None else ("ok" if r.ok else "MISS")
        lines.append((r.scenario, r.metric, value, r.unit, of_limit, r.target, mark))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(_cell(c, w, i) for i, (c, w) in enumerate(zip(line, widths, strict=True))) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text += [f"FAILED {line}" for line in errors(results)]
    return "\n".join(t.rstrip() for t in text)


def _cell(text: str, width: int, column: int) -> str:
    return text.rjust(width) if column in (2, 4) else text.ljust(width)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the raw results (every scenario's dict) as indented JSON."""
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
