"""The pytest plugin, loaded through its ``pytest11`` entry point in a fresh pytest run."""

from __future__ import annotations

import pytest

from bananas.testing.plugin import require_redis_server

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

TESTS = """
import pytest
from bananas import Bananas, JobStatus
from bananas.testing import RedisServer, join


def test_bananas_app_is_private_and_in_memory(bananas_app: Bananas) -> None:
    assert bananas_app.url.startswith("memory://bananas-test-")


def test_each_test_gets_its_own_app(bananas_app: Bananas) -> None:
    @bananas_app.task
    def only_here() -> None: ...

    assert list(bananas_app.tasks) == ["only_here"]


def test_bananas_eager_runs_submits_at_once(bananas_app: Bananas, bananas_eager: object) -> None:
    @bananas_app.task
    def hello(name: str) -> str:
        return f"hi {name}"

    assert bananas_app.client.get_job(hello.submit("ann")).result == "hi ann"


@pytest.mark.asyncio
async def test_bananas_worker_runs_tasks_declared_in_the_test(bananas_app: Bananas, bananas_worker: object) -> None:
    @bananas_app.task
    async def hello(name: str) -> str:
        return f"hi {name}"

    job_id = hello.submit("bob")
    await join(bananas_worker)
    job = bananas_app.client.get_job(job_id)
    assert job.status is JobStatus.COMPLETED and job.result == "hi bob"


def test_redis_fixtures(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == redis_server.url
    assert redis_server.client().dbsize() == 0
    redis_server.client().set("k", "v")


def test_redis_url_is_flushed_for_each_test(redis_url: str) -> None:
    import redis
    assert redis.Redis.from_url(redis_url).get("k") is None
"""


def test_the_plugin_fixtures_work_in_a_fresh_run(pytester: pytest.Pytester) -> None:
    require_redis_server()
    pytester.makeini(INI)
    pytester.makepyfile(test_user=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_redis_server_is_skipped_without_the_binary_and_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_user="def test_needs_redis(redis_url): pass\n")
    empty = str(pytester.mkdir("empty-path"))
    monkeypatch.setenv("PATH", empty)
    monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed*"])
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*redis-server is missing and CI=true*"])
