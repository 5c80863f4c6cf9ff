"""docs/TESTING.md's examples run as written: each ``# file.py`` block becomes that file
of a fresh pytest session, which must pass every test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bananas.testing.plugin import require_redis_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "TESTING.md"


def doc_files() -> dict[str, str]:
    """The doc's Python blocks that start with ``# name.py``, by name."""
    blocks = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOC.read_text(), re.S)
    return {name: body for name, body in blocks}


def test_the_doc_has_its_examples() -> None:
    assert set(doc_files()) == {"conftest.py", "test_eager.py", "test_worker.py", "test_redis.py", "test_wait.py"}


def test_the_examples_of_docs_testing_md_pass(pytester: pytest.Pytester) -> None:
    require_redis_server()
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    for name, body in doc_files().items():
        pytester.path.joinpath(name).write_text(body)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    tests = sum(len(re.findall(r"^(?:async )?def test_", body, re.M)) for body in doc_files().values())
    result.assert_outcomes(passed=tests)
