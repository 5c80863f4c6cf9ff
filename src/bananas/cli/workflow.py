"""``bananas workflow ID``: one workflow as a tree of its nodes with their statuses."""

from __future__ import annotations

import click

from bananas.brokers.workflow import NodeRecord, WorkflowRecord
from bananas.cli.options import build_settings, url_option
from bananas.cli.output import fmt_time, one_line, outcome
from bananas.client import Client
from bananas.errors import WorkflowNotFound

#: What each node state is drawn with.
MARKS = {"completed": "✓", "failed": "✗", "skipped": "-", "cancelled": "⊘", "processing": "▶", "waiting": "…",
         "pending": "○", "scheduled": "◷"}  # fmt: skip


@click.command()
@click.argument("workflow_id", metavar="ID")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="Most node lines to draw.")
@url_option
def workflow(workflow_id: str, limit: int, url: str | None) -> None:
    """Show a workflow: its state and every node (status, job id, attempts, result or
    error), drawn as a tree from the roots; a node with several parents is drawn under
    the first and referred to under the others."""
    settings = build_settings(url)
    with Client(settings.url, settings=settings) as client:
        record = client.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFound(f"no workflow {workflow_id!r} (unknown, or its record expired)")
    counts = ", ".join(f"{n} {state}" for state, n in sorted(record.counts().items()))
    click.echo(f"workflow {record.id}  {record.name} ({record.kind}, on_failure={record.policy})")
    finished = f", finished {fmt_time(record.finished_at, ms=True)}" if record.finished_at else ""
    click.echo(f"state    {record.state}: {counts}; created {fmt_time(record.created_at, ms=True)}{finished}")
    lines = tree(record)
    for line in lines[:limit]:
        click.echo(line)
    if len(lines) > limit:
        click.echo(f"... {len(lines) - limit} more lines (--limit)")


def tree(record: WorkflowRecord) -> list[str]:
    """The lines of the node tree: roots first, children indented under their first parent."""
    by_id = {n.id: n for n in record.nodes}
    lines: list[str] = []
    drawn: set[str] = set()

    def draw(node: NodeRecord, depth: int) -> None:
        indent = "  " * depth + ("└ " if depth else "")
        if node.id in drawn:
            lines.append(f"{indent}{node.id} (above)")
            return
        drawn.add(node.id)
        lines.append(indent + describe(node))
        for child in node.children:
            draw(by_id[child], depth + 1)

    for node in record.nodes:
        if not node.parents:
            draw(node, 0)
    return lines


def describe(node: NodeRecord) -> str:
    """One node on one line: mark, id, task, state, job id, attempts, result or error."""
    state = node.state
    text = f"{MARKS.get(state, '?')} {node.id}  {node.name}  {state}  job {node.job_id}"
    job = node.job
    if job is not None:
        took = f", {job.finished_at - job.started_at:.3f} s" if job.finished_at and job.started_at else ""
        text += f"  (attempts {job.attempts}, deliveries {job.deliveries}{took})"
        shown = outcome(job)
        if shown:
            text += "  " + one_line(shown, 80)
    return text
