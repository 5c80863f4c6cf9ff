"""Durations as users write them: the one parser, ``to_seconds`` and the CLI's flag type."""

from __future__ import annotations

import time
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner

import bananas
from bananas import ConfigurationError
from bananas.cli.options import DURATION, POSITIVE_DURATION, BadInput, DurationType
from bananas.cli.worker import child_argv
from bananas.durations import parse_duration
from bananas.job import to_seconds

ACCEPTED = "use seconds or a number with ms, s, m, h or d (30s, 5m, 2h, 1d)"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("7d", 604800.0),
        ("500ms", 0.5),
        ("90", 90.0),
        ("12.5", 12.5),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("  10s ", 10.0),
        ("10 s", 10.0),
        ("5M", 300.0),
        ("250MS", 0.25),
        ("1e3", 1000.0),
        ("0", 0.0),
        ("-1", -1.0),  # in range or not is the caller's call (delay >= 0, lease > 0, ...)
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", " ", "5 minutes", "5min", "m", "1w", "5mm", "1h30m", "ten", "nan", "inf", "1e999", "1,5s", "s5"]
)
def test_what_is_not_a_duration_is_one_line_naming_it(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_duration(text, "JOB_TIMEOUT")
    assert str(caught.value) == f"JOB_TIMEOUT={text!r} is not a duration: {ACCEPTED}"


def test_the_error_reads_as_documented() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_duration("5 minutes", "JOB_TIMEOUT")
    assert str(caught.value) == (
        "JOB_TIMEOUT='5 minutes' is not a duration: use seconds or a number with ms, s, m, h or d (30s, 5m, 2h, 1d)"
    )


def test_to_seconds_takes_numbers_timedeltas_and_duration_strings() -> None:
    assert to_seconds(None) is None
    assert to_seconds(10) == 10.0 and to_seconds(2.5) == 2.5
    assert to_seconds(timedelta(minutes=2)) == 120.0
    assert to_seconds("5m", "delay") == 300.0
    assert to_seconds("1d", "timeout") == 86400.0
    with pytest.raises(ConfigurationError, match=r"^delay='soon' is not a duration: use seconds"):
        to_seconds("soon", "delay")
    with pytest.raises(ConfigurationError, match=r"^timeout must be seconds, a timedelta or a duration"):
        to_seconds([1], "timeout")  # type: ignore[arg-type]


def _command(param_type: DurationType) -> click.Command:
    @click.command()
    @click.option("--lease", type=param_type, default=None)
    def cmd(lease: float | None) -> None:
        click.echo(repr(lease))

    return cmd


@pytest.mark.parametrize(("given", "shown"), [("45s", "45.0"), ("2m", "120.0"), ("1.5", "1.5"), ("100ms", "0.1")])
def test_duration_flags_convert_to_seconds(given: str, shown: str) -> None:
    done = CliRunner().invoke(_command(POSITIVE_DURATION), ["--lease", given])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == shown


@pytest.mark.parametrize(
    ("param_type", "given", "message"),
    [
        (POSITIVE_DURATION, "soon", f"--lease='soon' is not a duration: {ACCEPTED}"),
        (POSITIVE_DURATION, "0", "--lease='0' must be more than 0 seconds"),
        (POSITIVE_DURATION, "-5s", "--lease='-5s' must be more than 0 seconds"),
        (DURATION, "-1", "--lease='-1' must be at least 0 seconds"),
    ],
)
def test_a_bad_duration_flag_is_one_line_and_exit_code_2(param_type: DurationType, given: str, message: str) -> None:
    done = CliRunner().invoke(_command(param_type), ["--lease", given])
    assert done.exit_code == BadInput.exit_code == 2
    assert done.output == f"error: {message}\n"


def test_zero_is_a_duration_where_zero_is_allowed() -> None:
    done = CliRunner().invoke(_command(DURATION), ["--lease", "0s"])
    assert done.exit_code == 0 and done.output.strip() == "0.0"


def test_supervised_children_get_the_duration_and_retention_flags() -> None:
    argv = child_argv({"app_ref": "m:app", "lease": 45.0, "grace": 0.0, "completed_ttl": 7200.0, "failed_ttl": None})
    assert argv[-6:] == ["--lease", "45.0", "--grace", "0.0", "--completed-ttl", "7200.0"]
    assert "--failed-ttl" not in argv  # not given: the child reads BANANAS_FAILED_TTL itself


def test_submit_takes_delay_and_timeout_as_duration_strings() -> None:
    client = bananas.AsyncClient("redis://127.0.0.1:1/0")  # build() makes the job; nothing is sent
    before = time.time()
    job, _ = client.build(bananas.JobSpec("x", {}, delay="2m", timeout="30s"))
    assert job.timeout == 30.0
    assert job.scheduled_for is not None and before + 120 <= job.scheduled_for <= time.time() + 120
    with pytest.raises(ConfigurationError) as caught:
        client.build(bananas.JobSpec("x", {}, delay="in a bit"))
    assert str(caught.value) == f"delay='in a bit' is not a duration: {ACCEPTED}"
    with pytest.raises(ConfigurationError, match=r"^timeout='forever' is not a duration"):
        client.build(bananas.JobSpec("x", {}, timeout="forever"))
