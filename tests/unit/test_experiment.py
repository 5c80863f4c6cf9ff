"""Experiment files: what ``bananas chaos run`` reads, and the errors bad ones get."""

from __future__ import annotations

from pathlib import Path

import pytest

from bananas.errors import ConfigurationError
from bananas.resilience.experiment import Fault, parse

ROOT = Path(__file__).resolve().parents[2]


def test_the_examples_parse() -> None:
    kill = parse((ROOT / "examples/chaos/kill-workers.toml").read_text())
    assert (kill.jobs, kill.workers, kill.concurrency, kill.duration_s) == (10000, 8, 4, 100.0)
    assert kill.faults == (Fault("kill_worker", every_s=2.0, duration_s=1.0),) and kill.rate == 100.0
    part = parse((ROOT / "examples/chaos/partition.toml").read_text())
    assert [f.kind for f in part.faults] == ["partition", "restart_broker"]
    assert (part.faults[0].duration_s, part.faults[1].at_s, part.faults[1].duration_s) == (3.0, 14.0, 1.0)
    assert parse((ROOT / "examples/chaos/poison.toml").read_text()).poison == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("duration = ", "not valid TOML"),
        ("color = 'red'", r"unknown key\(s\) color"),
        ("[workload]\njobz = 3", r"\[workload\]: unknown key\(s\) jobz"),
        ("[[faults]]\nkind = 'meteor'\nevery = '1s'", "kind must be one of kill_worker, partition, restart_broker"),
        ("[[faults]]\nkind = 'partition'", "give either every or at"),
        ("duration = '-5s'", "must not be negative"),
        ("[workload]\nsleep = ['2s', '1s']", r"sleep = \[min, max\]"),
        ("[workers]\nstart = 0", "name the running workers' ledger"),
        ("url = 'sqlite:///x.db'\n[[faults]]\nkind = 'restart_broker'\nat = '1s'", "restart_broker needs url"),
        ("url = 'sqlite:///x.db'\n[[faults]]\nkind = 'partition'\nevery = '1s'", "needs a Redis broker over TCP"),
        ("[workers]\nstart = 0\nledger = 'l'\n[[faults]]\nkind = 'kill_worker'\nevery = '1s'", "start > 0"),
    ],
)
def test_bad_experiments_get_a_precise_error(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse(text, "exp.toml")
