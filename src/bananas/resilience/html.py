"""The resilience report as one self-contained HTML page: tables and inline SVG plots,
no scripts, no external files."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

W, H, PAD = 640, 180, 36


def _scale(lo: float, hi: float, size: float, flip: bool = False) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: (size - (v - lo) / span * size) if flip else (v - lo) / span * size


def line_chart(title: str, series: Sequence[Sequence[float]], x_max: float, marks: Sequence[float] = (),
               bands: Sequence[Sequence[float]] = (), y_max: float | None = None) -> str:  # fmt: skip
    """An SVG line chart of ``[x, y]`` points, with vertical marks (kills) and bands (partitions)."""
    top = y_max if y_max is not None else max([1.0, *(p[1] for p in series)])
    x, y = _scale(0.0, max(x_max, 1.0), W - 2 * PAD), _scale(0.0, top, H - 2 * PAD, flip=True)
    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{PAD}" y="14" class="t">{html.escape(title)}</text>',
             f'<g transform="translate({PAD},{PAD})">',
             f'<line x1="0" y1="{H - 2 * PAD}" x2="{W - 2 * PAD}" y2="{H - 2 * PAD}" class="axis"/>',
             f'<line x1="0" y1="0" x2="0" y2="{H - 2 * PAD}" class="axis"/>',
             f'<text x="-4" y="4" class="l" text-anchor="end">{top:g}</text>',
             f'<text x="-4" y="{H - 2 * PAD}" class="l" text-anchor="end">0</text>',
             f'<text x="{W - 2 * PAD}" y="{H - 2 * PAD + 14}" class="l" text-anchor="end">'
             f"{x_max:.0f} s</text>"]  # fmt: skip
    for a, b in bands:
        parts.append(f'<rect x="{x(a):.1f}" y="0" width="{max(1.0, x(b) - x(a)):.1f}" height="{H - 2 * PAD}" '
                     'class="band"/>')  # fmt: skip
    for m in marks:
        parts.append(f'<line x1="{x(m):.1f}" y1="0" x2="{x(m):.1f}" y2="{H - 2 * PAD}" class="mark"/>')
    if series:
        points = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in series)
        parts.append(f'<polyline points="{points}" class="line"/>')
    parts.append("</g></svg>")
    return "".join(parts)


def histogram(title: str, values: Sequence[float], bins: int = 20) -> str:
    """An SVG histogram of ``values`` (seconds)."""
    if not values:
        return f"<p>{html.escape(title)}: none.</p>"
    hi = max(values) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / hi * bins))] += 1
    width, peak = (W - 2 * PAD) / bins, max(counts)
    y = _scale(0.0, peak, H - 2 * PAD, flip=True)
    bars = "".join(f'<rect x="{i * width:.1f}" y="{y(c):.1f}" width="{width - 1:.1f}" '
                   f'height="{H - 2 * PAD - y(c):.1f}" class="bar"/>' for i, c in enumerate(counts))  # fmt: skip
    return (f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">'
            f'<text x="{PAD}" y="14" class="t">{html.escape(title)}</text><g transform="translate({PAD},{PAD})">'
            f'{bars}<text x="0" y="{H - 2 * PAD + 14}" class="l">0</text>'
            f'<text x="{W - 2 * PAD}" y="{H - 2 * PAD + 14}" class="l" text-anchor="end">{hi:.2f} s</text>'
            f'<text x="-4" y="4" class="l" text-anchor="end">{peak}</text></g></svg>')  # fmt: skip


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:720px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.ok{color:#070}.fail{color:#b00;font-weight:bold}
.axis{stroke:#444}.line{fill:none;stroke:#2a6;stroke-width:1.5}.mark{stroke:#c33;stroke-dasharray:2 2}
.band{fill:#f6c;opacity:.25}.bar{fill:#27c}.t{font-weight:bold;font-size:12px}.l{font-size:10px;fill:#444}"""


def render(report: dict[str, Any]) -> str:
    """The page for one report (``report.analyse``)."""
    t, s, ev = report["totals"], report["series"], report["events"]
    end = max([1.0, *(p[0] for v in s.values() for p in v)])
    verdict = '<span class="ok">passed</span>' if report["ok"] else '<span class="fail">FAILED</span>'
    checks = [(c["check"], c["expected"], c["actual"], "ok" if c["ok"] else "FAILED") for c in report["checks"]]
    rec, wrec = report["recovery_s"], report["worker_recovery_s"]
    return "".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report['name'])}: resilience report"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(report['name'])}: {verdict}</h1>",
        f"<p>{report['jobs']} jobs over {report['duration_s']:g} s on {html.escape(report['broker'])}, "
        f"{report['workers']} workers x {report['concurrency']}; faults: {report['faults']['kills']} kills, "
        f"{report['faults']['partitions']} partitions, {report['faults']['broker_restarts']} broker restarts.</p>",
        _table(checks, ["check", "expected", "actual", ""]),
        _table([(k, v) for k, v in t.items() if k != "stuck"], ["total", "value"]),
        line_chart("success rate of the jobs submitted each second", s["success_rate"], end, ev["kills"],
                   ev["partitions"], y_max=1.0),
        line_chart("queue depth (ready, suspects, scheduled)", s["depth"], end, ev["kills"], ev["partitions"]),
        line_chart("processing", s["processing"], end, ev["kills"], ev["partitions"]),
        line_chart("throughput (jobs ended per second)", s["throughput"], end, ev["kills"], ev["partitions"]),
        histogram(f"recovery time: a lost run to the next start (p50 {rec['p50']} s, p95 {rec['p95']} s)",
                  rec["values"]),
        histogram(f"worker recovery time: kill to replacement up (p50 {wrec['p50']} s, max {wrec['max']} s)",
                  wrec["values"]),
        "<p>Red dashed lines: worker kills; pink bands: partitions.</p>",
        f"<details><summary>report as JSON</summary><pre>{html.escape(json.dumps(report, indent=1))}</pre></details>",
        "</body></html>",
    ])  # fmt: skip
