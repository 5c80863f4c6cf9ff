"""The data model, wire format and settings: no sockets."""

from __future__ import annotations

import inspect
import time

import pytest

import bananas
import bananas.job as job_module
from bananas import ConfigurationError, Job, JobStatus, PayloadError, PayloadTooLarge, Priority, RetryPolicy, wire
from bananas.job import check_routing_key, new_id, parse_priority
from bananas.settings import Settings


def test_public_api_is_complete() -> None:
    public = {
        name
        for name, value in vars(bananas).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public - set(bananas.__all__) == set()
    for name in bananas.__all__:
        assert hasattr(bananas, name)


@pytest.mark.parametrize(
    ("given", "score"),
    [
        ("high", 90),
        ("HIGH", 90),
        ("normal", 50),
        ("low", 10),
        (Priority.HIGH, 90),
        (0, 0),
        (100, 100),
        ("75", 75),
        (None, 50),
    ],
)
def test_priority_forms(given: object, score: int) -> None:
    assert parse_priority(given) == score  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["urgent", -1, 101, 3.5, True])
def test_bad_priorities(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_priority(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a b", "x{y}", "é", "a" * 65, "tab\t"])
def test_illegal_routing_keys(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="illegal routing key"):
        check_routing_key(bad)


def test_ulids_are_unique_sortable_and_26_chars() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == 5000 and ids == sorted(ids) and all(len(i) == 26 for i in ids)


def _ulid_value(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value


def test_ulids_in_one_millisecond_count_up_across_the_cached_stem(monkeypatch: pytest.MonkeyPatch) -> None:
    # new_id caches all but the last 2 characters; an increment out of the last 10 bits
    # must rebuild them. Same millisecond (a far future one), random part just below a carry.
    far = (time.time_ns() // 1_000_000) + 10**9
    monkeypatch.setattr(job_module, "_ulid_state", [far, (0x1234 << 10) | 1021, ""])
    monkeypatch.setattr(time, "time_ns", lambda: far * 1_000_000)
    values = [_ulid_value(new_id()) for _ in range(2100)]
    start = (far << 80) | (0x1234 << 10) | 1022
    assert values == list(range(start, start + 2100))


def test_ulid_time_part_is_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = 0
    for char in new_id():
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    after = time.time_ns() // 1_000_000
    assert before <= value >> 80 <= after


def test_wire_round_trip_and_errors() -> None:
    job = Job(id=new_id(), name="n", payload={"a": [1, 2]}, headers={"traceparent": "x"})
    back = wire.decode_job(wire.encode_job(job))
    assert back == job and back.status is JobStatus.PENDING
    with pytest.raises(PayloadError, match="malformed job JSON"):
        wire.decode_job(b"{nope")
    with pytest.raises(PayloadError, match="unknown job envelope version 7"):
        wire.decode_job(wire.encode({**wire.decode(wire.encode(job)), "v": 7}))
    with pytest.raises(PayloadError, match="invalid job envelope"):
        wire.decode_job(b'{"id": 1}')
    with pytest.raises(PayloadTooLarge, match="over the limit of 100 bytes"):
        wire.encode_job(Job(id=new_id(), name="n", payload={"x": "y" * 200}), max_bytes=100)


def test_retry_policy_is_exponential_capped_and_jittered() -> None:
    p = RetryPolicy(base_s=1, max_s=10, jitter=0.2)
    assert [p.delay_s(a, 0.5) for a in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
    assert p.delay_s(1, 0.0) == pytest.approx(1.6) and p.delay_s(1, 0.999) == pytest.approx(2.4, rel=1e-2)


def test_settings_from_env_and_flags() -> None:
    s = Settings.from_env({"REDIS_URL": "redis://h:1/0", "WORKER_CONCURRENCY": "7", "WORKER_ROUTING_KEYS": "a, b",
                           "JOB_TIMEOUT": "12.5", "MAX_RETRIES": "4", "ENABLE_SCHEDULER": "false"})  # fmt: skip
    assert s.url == "redis://h:1/0" and s.worker.concurrency == 7 and s.worker.routing_keys == ("a", "b")
    assert s.jobs.timeout_s == 12.5 and s.jobs.max_retries == 4 and not s.worker.enable_scheduler
    assert Settings.from_env({"BANANAS_URL": "memory://", "REDIS_URL": "redis://x"}).url == "memory://"
    assert Settings.from_env({}).url == "sqlite:///bananas.db"
    assert s.with_worker(concurrency=3, routing_keys=None).worker.concurrency == 3
    with pytest.raises(ConfigurationError, match="WORKER_CONCURRENCY must be an integer"):
        Settings.from_env({"WORKER_CONCURRENCY": "many"})
    with pytest.raises(ConfigurationError, match="WORKER_MODE 'turbo'"):
        Settings.from_env({"WORKER_MODE": "turbo"})
    with pytest.raises(ConfigurationError, match="illegal routing key"):
        Settings.from_env({"WORKER_ROUTING_KEYS": "ok,not ok"})


@pytest.mark.parametrize("bad", [[1], {"a": 1}, 5, "a b"])
def test_build_refuses_bad_names_and_routing_keys_precisely(bad: object) -> None:
    # Checked names and routing keys are remembered; a value that cannot be remembered
    # (unhashable) or is not a string still gets the precise error, never a TypeError.
    client = bananas.AsyncClient("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="illegal job name"):
        client.build(bananas.JobSpec(bad, {}))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="illegal routing key"):
        client.build(bananas.JobSpec("ok", {}, routing_key=bad))  # type: ignore[arg-type]


def test_a_malformed_bodys_excerpt_is_capped_escaped_and_shown_on_one_line() -> None:
    from bananas.cli.output import job_fields

    body = b"line one\n\x1b[31mred\xff" + b"x" * 10_000
    raw = wire.raw_excerpt(body)
    assert raw == body[:4096].decode("utf-8", "backslashreplace") and raw.startswith("line one\n\x1b[31mred\\xff")
    shown = dict(job_fields(Job(id=new_id(), name="?", payload={}, raw=raw)))["raw body"]
    assert "\n" not in shown and "\x1b" not in shown and shown.startswith("line one\\n\\x1b[31mred\\\\xff")
    assert shown.endswith("... (4099 characters kept; --json shows them)")
