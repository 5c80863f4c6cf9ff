"""How a callback's condition is stored (a mark after its id in its parent's children)
and read back, and when each kind of child may run (``brokers.workflow``; the Redis
scripts and SQLite follow the same table, shown by tests/integration/test_callbacks.py)."""

from __future__ import annotations

import pytest

from bananas.brokers.workflow import NodeRecord, WorkflowRecord, edge, edge_runs, marked_children, unmark


def node(node_id: str, children: list[str], when: str = "") -> NodeRecord:
    return NodeRecord(node_id, f"j-{node_id}", "t", "default", 50, [], children, b"{}", when=when)


def test_marks_are_added_for_storage_and_stripped_on_reading() -> None:
    nodes = [node("job", ["ok", "bad", "all", "next"]), node("ok", [], "success"), node("bad", [], "failure"),
             node("all", [], "always"), node("next", [])]  # fmt: skip
    stored = marked_children(WorkflowRecord("w", "n", "callbacks", "continue", b'"job"', 0.0, nodes))
    assert stored["job"] == ["ok+", "bad!", "all*", "next"] and stored["ok"] == []
    read = [node(n.id, stored[n.id]) for n in nodes]
    unmark(read)
    assert read[0].children == ["ok", "bad", "all", "next"]
    assert [n.when for n in read] == ["", "success", "failure", "always", ""]


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [("a", ("a", "")), ("a+", ("a", "+")), ("a.1!", ("a.1", "!")), ("b*", ("b", "*")), ("", ("", ""))],
)
def test_edge_splits_an_entry(entry: str, parsed: tuple[str, str]) -> None:
    assert edge(entry) == parsed


@pytest.mark.parametrize(
    ("mark", "completed", "allow", "runs"),
    [
        ("", True, False, True), ("", False, False, False), ("", False, True, True),
        ("+", True, False, True), ("+", False, False, False), ("+", False, True, False),
        ("!", True, False, False), ("!", False, False, True),
        ("*", True, False, True), ("*", False, False, True),
    ],
)  # fmt: skip
def test_which_children_run_after_their_parent(mark: str, completed: bool, allow: bool, runs: bool) -> None:
    assert edge_runs(mark, completed, allow) is runs
