"""``Settings.from_env`` with a dict: durations, log levels and retention, good and bad."""

from __future__ import annotations

import pytest

from bananas import ConfigurationError
from bananas.cli.logs import log_config
from bananas.settings import JobDefaults, Settings

ACCEPTED = "use seconds or a number with ms, s, m, h or d (30s, 5m, 2h, 1d)"

#: Every duration variable and where its value lands.
DURATIONS = {
    "JOB_TIMEOUT": lambda s: s.jobs.timeout_s,
    "SCHEDULER_INTERVAL": lambda s: s.scheduler.interval_s,
    "CRON_SCHEDULER_INTERVAL": lambda s: s.scheduler.cron_interval_s,
    "BANANAS_SCHEDULER_LEADER_TTL": lambda s: s.scheduler.leader_ttl_s,
    "LOG_ES_FLUSH_INTERVAL": lambda s: s.logs.es_flush_interval_s,
    "BANANAS_COMPLETED_TTL": lambda s: s.jobs.completed_ttl_s,
    "BANANAS_FAILED_TTL": lambda s: s.jobs.failed_ttl_s,
}


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("45", 45.0), ("1500ms", 1.5)])
def test_every_duration_variable_takes_units_and_plain_seconds(name: str, text: str, seconds: float) -> None:
    assert DURATIONS[name](Settings.from_env({name: text})) == seconds


@pytest.mark.parametrize("name", ["JOB_TIMEOUT", "BANANAS_COMPLETED_TTL", "BANANAS_FAILED_TTL"])
def test_long_durations_take_hours_and_days(name: str) -> None:
    assert DURATIONS[name](Settings.from_env({name: "2h"})) == 7200.0
    assert DURATIONS[name](Settings.from_env({name: "1d"})) == 86400.0


def test_job_timeout_5m_is_five_minutes() -> None:
    assert Settings.from_env({"JOB_TIMEOUT": "5m"}).jobs.timeout_s == 300.0


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("text", ["5 minutes", "soon", "1w", "5min"])
def test_a_bad_duration_is_one_line_naming_the_variable_and_the_value(name: str, text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: text})
    assert str(caught.value) == f"{name}={text!r} is not a duration: {ACCEPTED}"


@pytest.mark.parametrize(
    ("name", "text", "shown"),
    [
        ("JOB_TIMEOUT", "0", "0"),
        ("JOB_TIMEOUT", "-5m", "-300"),
        ("SCHEDULER_INTERVAL", "0s", "0"),
        ("CRON_SCHEDULER_INTERVAL", "-1", "-1"),
        ("LOG_ES_FLUSH_INTERVAL", "0ms", "0"),
        ("BANANAS_COMPLETED_TTL", "0", "0"),
        ("BANANAS_FAILED_TTL", "0d", "0"),
    ],
)
def test_durations_out_of_range_name_the_variable(name: str, text: str, shown: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: text})
    assert str(caught.value) == f"{name} must be more than 0 seconds, got {shown} s"


def test_leader_ttl_range_is_checked_after_units() -> None:
    assert Settings.from_env({"BANANAS_SCHEDULER_LEADER_TTL": "5m"}).scheduler.leader_ttl_s == 300.0
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"BANANAS_SCHEDULER_LEADER_TTL": "10m"})
    assert str(caught.value) == "BANANAS_SCHEDULER_LEADER_TTL must be between 0.5 and 300 seconds, got 600 s"


def test_retention_defaults_completed_one_hour_dead_lettered_seven_days() -> None:
    jobs = Settings.from_env({}).jobs
    assert jobs.completed_ttl_s == 3600.0
    assert jobs.failed_ttl_s == 7 * 86400.0 == JobDefaults().failed_ttl_s


def test_retention_from_the_environment_then_flags() -> None:
    s = Settings.from_env({"BANANAS_COMPLETED_TTL": "2h", "BANANAS_FAILED_TTL": "30d"})
    assert (s.jobs.completed_ttl_s, s.jobs.failed_ttl_s) == (7200.0, 30 * 86400.0)
    flagged = s.with_jobs(completed_ttl_s=60.0, failed_ttl_s=None)  # --completed-ttl 1m, no --failed-ttl
    assert (flagged.jobs.completed_ttl_s, flagged.jobs.failed_ttl_s) == (60.0, 30 * 86400.0)
    with pytest.raises(ConfigurationError, match=r"^BANANAS_FAILED_TTL must be more than 0 seconds"):
        s.with_jobs(failed_ttl_s=0.0)


@pytest.mark.parametrize("name", ["LOG_LEVEL", "LOG_FILE_LEVEL", "LOG_ES_LEVEL"])
@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("warn", "WARNING"),
        ("WARN", "WARNING"),
        ("Warning", "WARNING"),
        ("warning", "WARNING"),
        ("debug", "DEBUG"),
        ("Info", "INFO"),
        ("error", "ERROR"),
        ("critical", "CRITICAL"),
        ("fatal", "CRITICAL"),
        (" warn ", "WARNING"),
    ],
)
def test_log_levels_any_case_and_warn(name: str, text: str, level: str) -> None:
    s = Settings.from_env({name: text})
    found = {"LOG_LEVEL": s.log_level, "LOG_FILE_LEVEL": s.logs.file_level, "LOG_ES_LEVEL": s.logs.es_level}
    assert found[name] == level


@pytest.mark.parametrize("name", ["LOG_LEVEL", "LOG_FILE_LEVEL", "LOG_ES_LEVEL"])
def test_a_bad_log_level_is_one_line_naming_the_variable(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: "loud"})
    levels = "use debug, info, warning (or warn), error or critical"
    assert str(caught.value) == f"{name}='loud' is not a log level: {levels}"


def test_the_command_line_console_takes_warn_too() -> None:
    assert log_config("warn", "text")["root"]["level"] == "WARNING"
    with pytest.raises(ConfigurationError, match=r"^LOG_LEVEL='loud' is not a log level"):
        log_config("loud", "text")


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({})
    assert s.log_level == "INFO" and s.jobs.timeout_s == 300.0
    assert (s.scheduler.interval_s, s.scheduler.cron_interval_s, s.scheduler.leader_ttl_s) == (5.0, 1.0, 8.0)
    assert s.logs.es_flush_interval_s == 10.0


def test_redact_url_drops_the_password_and_keeps_the_rest() -> None:
    from bananas.envvars import redact_url

    assert redact_url("redis://bananas:p@ss:w0rd@10.0.0.1:6379/0") == "redis://bananas@10.0.0.1:6379/0"
    assert redact_url("rediss://:secret@h:6380/1?ssl_ca_certs=/ca.pem") == "rediss://h:6380/1?ssl_ca_certs=/ca.pem"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact_url("sqlite:///jobs.db") == "sqlite:///jobs.db"
