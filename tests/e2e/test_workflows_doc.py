"""docs/WORKFLOWS.md's examples run as written: each ``# name.py`` block is saved as that
file, a real ``bananas worker --app name:app`` serves it on the embedded broker, and
``python name.py`` prints the result its last comment announces."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import WorkerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "WORKFLOWS.md"


def examples() -> dict[str, str]:
    """The doc's Python blocks that start with ``# name.py``, by name."""
    return dict(re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOC.read_text(), re.S))


def test_the_doc_has_its_examples() -> None:
    assert set(examples()) == {"etl.py", "notify.py", "payment.py", "report.py"}


@pytest.mark.parametrize("name", sorted(examples()))
def test_the_examples_of_docs_workflows_md_print_what_they_say(
    name: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    body = examples()[name]
    expected = re.findall(r"# (.+)$", body.rstrip().splitlines()[-1])[0]
    work = tmp_path / "example"
    work.mkdir()
    (work / name).write_text(body)
    url = f"sqlite:///{work}/bananas.db"
    module = name.removesuffix(".py")
    worker = spawn_worker(url, env={"PYTHONPATH": str(work)}, app=f"{module}:app")
    env = {**os.environ, "BANANAS_URL": url, "PYTHONPATH": str(work)}
    done = subprocess.run(
        [sys.executable, name], check=False, cwd=work, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr + worker.output()
    assert done.stdout.strip().splitlines()[-1] == expected
