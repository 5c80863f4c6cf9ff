"""Catalogue entries from task definitions, their JSON, and payload checks from the
published schema (no server)."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from bananas import Context, PayloadError
from bananas.catalogue import REFRESH_S, Catalogue, PayloadCheck, TaskInfo, decode, describe, encode, parameters
from bananas.job import RetryPolicy
from bananas.registry import TaskDefinition
from bananas.signature import PayloadSpec


class Address(TypedDict):
    city: str


class Opaque:
    """A type JSON Schema cannot express."""


def ship(ctx: Context, to: Address, items: list[int], note: str = "") -> list[str]:
    """Ship items.

    Details."""
    return []


def test_describe_publishes_the_definition_and_schemas() -> None:
    task = TaskDefinition(ship, routing_key="ship", priority="low", max_retries=2, timeout="1m",
                          retry=RetryPolicy(base_s=3, max_s=60, jitter=0.1))  # fmt: skip
    info = describe(task)
    assert (info.name, info.routing_key, info.priority, info.max_retries, info.timeout_s) == ("ship", "ship", 10, 2, 60)
    assert (info.retry.base_s, info.retry.max_s, info.retry.jitter, info.summary) == (3, 60, 0.1, "Ship items.")
    payload = info.payload_schema["$defs"]["ship_payload"]
    assert payload["required"] == ["to", "items"] and "ctx" not in payload["properties"]
    assert info.result_schema == {"type": "array", "items": {"type": "string"}}
    back = decode(encode(info), {"w1": 5.0})
    assert back == TaskInfo(**{**{f: getattr(info, f) for f in info.__struct_fields__}, "workers": {"w1": 5.0}})


def test_unexpressible_hints_are_published_as_any_value() -> None:
    async def odd(thing: Opaque, other: object = None, n: int = 0) -> Opaque:
        return thing

    info = describe(TaskDefinition(odd))
    assert parameters(info.payload_schema) == ["thing", "other", "n"]  # every parameter is listed
    assert info.result_schema == {"description": "any value (Opaque)"}
    check = PayloadCheck("odd", info.payload_schema)
    check({"thing": 1, "other": [1]})  # anything goes where JSON Schema has no word for the hint
    with pytest.raises(PayloadError, match=r"must contain \[.thing.\]"):
        check({"n": 1})
    with pytest.raises(PayloadError, match="n must be integer"):
        check({"thing": 1, "n": "one"})


def test_a_default_that_is_not_json_publishes_no_schema_and_checks_nothing() -> None:
    def odd(when: Opaque = Opaque()) -> None:  # noqa: B008 - the point of the test
        return None

    info = describe(TaskDefinition(odd))
    assert info.payload_schema == {} and parameters(info.payload_schema) == []
    PayloadCheck("odd", info.payload_schema)({"when": 1})  # nothing to check against


def test_payload_check_names_the_field() -> None:
    check = PayloadCheck("ship", describe(TaskDefinition(ship)).payload_schema)
    check({"to": {"city": "Oslo"}, "items": [1, 2]})
    cases: dict[str, dict[str, Any]] = {
        "to.city": {"to": {"city": 5}, "items": []},
        "items": {"to": {"city": "x"}},
        "items.1": {"to": {"city": "x"}, "items": [1, "two"]},
        "to": {"items": []},
    }
    for field, payload in cases.items():
        with pytest.raises(PayloadError, match="task 'ship' \\(task catalogue\\)") as caught:
            check(payload)
        assert caught.value.field == field, payload
    with pytest.raises(PayloadError, match="must not contain"):
        check({"to": {"city": "x"}, "items": [], "extra": 1})


def test_the_local_check_names_the_field_too() -> None:
    spec = PayloadSpec(ship, "ship")
    for field, payload in {"to.city": {"to": {"city": 5}, "items": []}, "items": {"to": {"city": "x"}},
                           "items.1": {"to": {"city": "x"}, "items": [1, "2"]}, "zz": {"to": {"city": "x"},
                           "items": [], "zz": 1}}.items():  # fmt: skip
        with pytest.raises(PayloadError) as caught:
            spec.check(payload)
        assert caught.value.field == field


def test_catalogue_copy_is_stale_until_read_and_after_refresh_s() -> None:
    cat = Catalogue()
    assert cat.stale(0.0) and cat.get("ship") is None
    cat.replace([describe(TaskDefinition(ship))], 100.0)
    assert not cat.stale(100.0 + REFRESH_S) and cat.stale(100.0 + REFRESH_S + 1)
    info = cat.get("ship")
    assert info is not None
    with pytest.raises(PayloadError):
        cat.check(info, {"to": {}})
    assert decode(b"not json", {}) is None
