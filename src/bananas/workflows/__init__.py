"""Workflows: chains, groups, chords and DAGs (docs/WORKFLOWS.md)."""

from bananas.workflows.builder import WorkflowBuilder
from bananas.workflows.canvas import DAG, Chain, Chord, DagNode, Group, ResultRef, Signature, chain, chord, group

__all__ = ["DAG", "Chain", "Chord", "DagNode", "Group", "ResultRef", "Signature", "WorkflowBuilder", "chain",
           "chord", "group"]  # fmt: skip
