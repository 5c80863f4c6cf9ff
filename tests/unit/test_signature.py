"""Payload checks against handler type hints."""

from __future__ import annotations

import pytest

from bananas import Bananas, ConfigurationError, Context, PayloadError


def make_app() -> Bananas:
    return Bananas("memory://")


def test_context_parameter_is_not_part_of_the_payload() -> None:
    app = make_app()

    @app.task
    def resize(ctx: Context, url: str, width: int = 100) -> str:
        return url

    assert resize.spec.context_param == "ctx"
    assert resize.spec.check({"url": "u"}) == {"url": "u", "width": 100}
    with pytest.raises(PayloadError, match="unknown field `ctx`"):
        resize.spec.check({"url": "u", "ctx": 1})


def test_nested_hints_are_checked() -> None:
    app = make_app()

    @app.task
    async def tag(names: list[str], weights: dict[str, float] | None = None) -> None: ...

    assert tag.spec.check({"names": ["a"], "weights": {"x": 1.5}})["weights"] == {"x": 1.5}
    with pytest.raises(PayloadError, match=r"at `\$.names\[1\]`"):
        tag.spec.check({"names": ["a", 2]})


def test_var_kwargs_accept_extra_fields() -> None:
    app = make_app()

    @app.task
    def anything(a: int, **rest: object) -> None: ...

    assert anything.spec.check({"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_registration_errors() -> None:
    app = make_app()

    @app.task(name="dup")
    def one() -> None: ...

    with pytest.raises(ConfigurationError, match="already registered"):

        @app.task(name="dup")
        def two() -> None: ...

    with pytest.raises(ConfigurationError, match="unknown priority"):
        app.task(name="p", priority="asap")(lambda: None)
    with pytest.raises(ConfigurationError, match="illegal routing key"):
        app.task(name="r", routing_key="no spaces")(lambda: None)
