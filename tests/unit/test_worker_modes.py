"""Worker modes: defaults, environment, and a clear error for each bad combination."""

from __future__ import annotations

import pytest

from bananas.errors import ConfigurationError
from bananas.settings import Settings, parse_priorities


def test_default_mode() -> None:
    w = Settings.from_env({}).worker
    assert (w.mode, w.concurrency, w.priorities, w.job_types, w.enable_scheduler) == ("default", 10, (), (), True)


def test_specialized_mode_from_env() -> None:
    w = Settings.from_env({"WORKER_MODE": "specialized", "WORKER_PRIORITIES": "low,high"}).worker
    assert w.priorities == ((67, 100), (0, 33))


def test_job_specialized_mode_from_env() -> None:
    w = Settings.from_env({"WORKER_MODE": "job-specialized", "WORKER_JOB_TYPES": "send_email, resize"}).worker
    assert w.job_types == ("send_email", "resize")


def test_priority_bands() -> None:
    assert parse_priorities("high") == ((67, 100),)
    assert parse_priorities("80-100,90") == ((80, 100), (90, 90))
    assert parse_priorities("") == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKER_MODE": "turbo"}, "is not one of"),
        ({"WORKER_MODE": "specialized"}, "needs WORKER_PRIORITIES"),
        ({"WORKER_MODE": "job-specialized"}, "needs WORKER_JOB_TYPES"),
        ({"WORKER_PRIORITIES": "high"}, "needs WORKER_MODE=specialized"),
        ({"WORKER_MODE": "specialized", "WORKER_PRIORITIES": "urgent"}, "is not high, normal, low"),
        ({"WORKER_MODE": "specialized", "WORKER_PRIORITIES": "50-200"}, "within 0..100"),
        ({"WORKER_JOB_TYPES": "a"}, "needs WORKER_MODE=job-specialized"),
        ({"WORKER_MODE": "thin", "WORKER_CONCURRENCY": "20"}, "allows WORKER_CONCURRENCY 1..10"),
        ({"WORKER_MODE": "thin", "ENABLE_SCHEDULER": "false"}, "runs its own scheduler"),
        ({"WORKER_MODE": "scheduler-only", "WORKER_JOB_TYPES": "a"}, "needs WORKER_MODE=job-specialized"),
        ({"CRON_SCHEDULER_INTERVAL": "0"}, "CRON_SCHEDULER_INTERVAL"),
    ],
)
def test_bad_combinations(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_thin_is_one_process() -> None:
    with pytest.raises(ConfigurationError, match="one process"):
        Settings.from_env({"WORKER_MODE": "thin"}).with_worker(processes=2)


def test_cron_settings_from_env() -> None:
    s = Settings.from_env({"CRON_SCHEDULER_ENABLED": "false", "CRON_SCHEDULER_INTERVAL": "0.5"}).scheduler
    assert (s.cron_enabled, s.cron_interval_s) == (False, 0.5)
