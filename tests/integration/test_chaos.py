"""Failure injection (``bananas.chaos``) on every broker: each fault kind does what it
says to real jobs, is counted, and chaos refuses to run outside its environments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bananas import AsyncClient, Bananas, JobStatus
from bananas.brokers import from_url
from bananas.chaos import ChaosConfig, ChaosRefused, Latency, Memory, Partition, arm, chaos_broker, from_env
from bananas.errors import BrokerUnavailable, ConfigurationError
from bananas.observability.metrics import PrometheusMiddleware
from bananas.worker.worker import Worker
from tests.conftest import make_settings

ENV = {"BANANAS_ENV": "test"}


@pytest.fixture(autouse=True)
def in_test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANANAS_ENV", "test")
    monkeypatch.delenv("BANANAS_CHAOS", raising=False)


def chaos(**rates: object) -> ChaosConfig:
    return ChaosConfig(environments=("staging", "test"), seed=1, **rates)  # type: ignore[arg-type]


def app_for(url: str) -> Bananas:
    app = Bananas(settings=make_settings(url))

    @app.task(max_retries=0)
    async def echo(n: int) -> int:
        return n

    @app.task(max_retries=0)
    def echo_sync(n: int) -> int:
        return n

    return app


@asynccontextmanager
async def chaotic_worker(app: Bananas, config: ChaosConfig) -> AsyncIterator[Worker]:
    worker = Worker(app, chaos=config)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("task", ["echo", "echo_sync"])
async def test_injected_failures_and_timeouts_are_judged_as_the_handlers_own(broker_url: str, task: str) -> None:
    app = app_for(broker_url)
    client = app.async_client()
    async with chaotic_worker(app, chaos(failure_rate=1.0)) as worker:
        failed = await client.wait(await client.submit(task, {"n": 1}), 10)
    assert failed.status is JobStatus.FAILED and failed.reason == "max_retries", failed
    assert failed.error == f"InjectedFault: chaos: injected failure in {task} (gave up after 1 attempts)"
    assert worker.chaos is not None and worker.chaos.injected["failure"] == 1
    async with chaotic_worker(app, chaos(timeout_rate=1.0)):
        timed_out = await client.wait(await client.submit(task, {"n": 2}), 10)
    assert timed_out.status is JobStatus.FAILED and timed_out.error is not None
    assert f"chaos: injected timeout in {task}" in timed_out.error
    await client.close()


async def test_latency_and_memory_are_injected_and_the_job_still_completes(broker_url: str) -> None:
    app = app_for(broker_url)
    client = app.async_client()
    config = chaos(latency=Latency(1.0, 0.3, 0.3), memory=Memory(1.0, 20))
    async with chaotic_worker(app, config) as worker:
        started = time.monotonic()
        assert await client.submit_and_wait("echo", {"n": 3}, timeout=10) == 3
        assert time.monotonic() - started >= 0.3
    assert worker.chaos is not None and (worker.chaos.injected["latency"], worker.chaos.injected["memory"]) == (1, 1)
    await client.close()


async def test_a_corrupted_body_is_dead_lettered_malformed_with_its_bytes_kept(broker_url: str) -> None:
    app = app_for(broker_url)
    client = app.async_client()
    job_id = await client.submit("echo", {"n": 4})
    async with chaotic_worker(app, chaos(corruption_rate=1.0)):
        job = await client.wait(job_id, 10)
    assert job.status is JobStatus.FAILED and job.reason == "malformed", job
    assert job.error is not None and job.error.startswith("malformed job"), job
    await client.close()


async def test_broker_errors_reach_clients_and_workers_ride_them_out(broker_url: str) -> None:
    app = app_for(broker_url)
    failing = AsyncClient(broker_url, app=app, chaos=chaos(broker_error_rate=1.0))
    with pytest.raises(BrokerUnavailable, match="chaos: injected broker connection error during enqueue"):
        await failing.submit("echo", {"n": 5})
    await failing.close()
    client = app.async_client()
    async with chaotic_worker(app, chaos(broker_error_rate=0.5)) as worker:
        assert await client.submit_and_wait("echo", {"n": 6}, timeout=20) == 6  # retried until a call got through
    assert worker.chaos is not None and worker.chaos.injected["broker_error"] >= 1
    await client.close()


async def test_a_partition_fails_every_call_for_its_duration(broker_url: str) -> None:
    injector = arm(chaos(partition=Partition(1.0, 0.3)))
    assert injector is not None
    broker = chaos_broker(injector, from_url(broker_url))
    with pytest.raises(BrokerUnavailable, match="partitioned"):
        await broker.ping()
    injector.config = chaos()  # no new partition: the one under way runs its course
    with pytest.raises(BrokerUnavailable, match=r"partitioned from the broker during ping \(0\.\d s left\)"):
        await broker.ping()
    await asyncio.sleep(0.35)  # the partition's 0.3 s: time is what is under test
    await broker.ping()
    assert injector.injected["partition"] == 1
    await broker.close()


def test_chaos_refuses_to_start_outside_its_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("production", ""):
        monkeypatch.setenv("BANANAS_ENV", env)
        with pytest.raises(ChaosRefused, match="refusing to inject faults here") as refused:
            arm(chaos(failure_rate=0.1))
        assert ("'production'" if env else "BANANAS_ENV is unset") in str(refused.value)
    with pytest.raises(ChaosRefused):
        Worker(Bananas(settings=make_settings("memory://")), chaos=chaos(failure_rate=0.1))


def test_the_chaos_file_is_read_checked_and_refused_loudly(tmp_path: Path) -> None:
    path = tmp_path / "chaos.toml"
    path.write_text('environments = ["test"]\nfailure_rate = 0.05\n[latency]\nrate = 0.1\nmin = "100ms"\nmax = "2s"\n')
    config = from_env({"BANANAS_CHAOS": str(path), **ENV})
    assert config is not None and config.failure_rate == 0.05 and config.latency == Latency(0.1, 0.1, 2.0)
    assert from_env({"BANANAS_CHAOS": "", **ENV}) is None
    with pytest.raises(ChaosRefused):
        from_env({"BANANAS_CHAOS": str(path), "BANANAS_ENV": "production"})
    bad = {
        "failure_rate = 2.0": "failure_rate must be a probability",
        "typo_rate = 0.1": "unknown key(s) typo_rate",
        '[latency]\nrate = 0.1\nmin = "2s"\nmax = "1s"': "min <= max",
        "failure_rate = ": "not valid TOML",
    }
    for body, message in bad.items():
        path.write_text('environments = ["test"]\n' + body + "\n")
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            from_env({"BANANAS_CHAOS": str(path), **ENV})
    with pytest.raises(ConfigurationError, match="cannot read it"):
        from_env({"BANANAS_CHAOS": str(tmp_path / "missing.toml"), **ENV})


def test_injected_faults_are_counted_by_kind_in_prometheus() -> None:
    metrics = PrometheusMiddleware()
    injector = arm(chaos())
    assert injector is not None
    injector.record("crash", "a test fault")
    injector.record("crash", "a test fault")
    injector.record("latency", "a test fault")
    value = metrics.registry.get_sample_value
    assert value("bananas_chaos_injected_total", {"kind": "crash"}) == 2
    assert value("bananas_chaos_injected_total", {"kind": "latency"}) == 1
    metrics.stop_counting_chaos()
