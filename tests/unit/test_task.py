"""``Task.submit`` with the handler's own arguments, ``task.options(...)``, and what the
façade, registry and job building agree on (memory broker, no server)."""

from __future__ import annotations

import pytest

from bananas import Bananas, ConfigurationError, Context, PayloadError, Priority
from bananas.registry import Registry, TaskDefinition
from bananas.submission import JobBuilder, JobSpec


@pytest.fixture
def app() -> Bananas:
    return Bananas("memory://")


def test_positional_arguments_are_named_after_the_parameters(app: Bananas) -> None:
    @app.task
    def resize(ctx: Context, url: str, width: int = 64) -> str:
        return url

    job = app.client.get_job(resize.submit("img.png", 32))
    assert job is not None and job.payload == {"url": "img.png", "width": 32}
    with pytest.raises(PayloadError, match="takes 2 arguments, got 3"):
        resize.submit("a", 1, 2)  # type: ignore[call-arg]
    with pytest.raises(PayloadError, match="url given twice"):
        resize.submit("a", url="b")  # type: ignore[misc]
    app.client.close()


def test_options_view_carries_the_submit_options(app: Bananas) -> None:
    @app.task(routing_key="email")
    def send(to: str) -> None:
        return None

    plain = app.client.get_job(send.submit(to="a"))
    tuned = app.client.get_job(send.options(priority="high", routing_key="vip", max_retries=7).submit(to="b"))
    delayed = app.client.get_job(send.options(delay=60).submit(to="c"))
    assert plain is not None and tuned is not None and delayed is not None
    assert (plain.routing_key, plain.priority) == ("email", int(Priority.NORMAL))
    assert (tuned.routing_key, tuned.priority, tuned.max_retries) == ("vip", int(Priority.HIGH), 7)
    assert delayed.scheduled_for is not None and delayed.status.value == "scheduled"
    with pytest.raises(ConfigurationError, match="job timeout"):
        send.options(timeout=5).submit_and_wait(to="d")
    app.client.close()


def test_unknown_submit_option_is_named(app: Bananas) -> None:
    @app.task
    def noop() -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"unknown submit option.*prio"):
        app.client.submit("noop", {}, prio="high")  # type: ignore[call-arg]
    app.client.close()


def test_registry_holds_what_the_app_declares(app: Bananas) -> None:
    @app.task(max_retries=5)
    def one() -> None:
        """First line.

        More."""

    assert app.registry.tasks["one"] is one and app.tasks["one"] is one
    assert one.summary == "First line."
    assert app.registry.registry is app.registry
    with pytest.raises(ConfigurationError, match="already registered"):
        app.task(name="one")(lambda: None)


def test_job_builder_applies_task_defaults_and_checks_payloads() -> None:
    def handler(n: int) -> None:
        return None

    registry = Registry(Bananas("memory://").settings)
    registry.add(TaskDefinition(handler, name="h", priority="low", routing_key="rk", max_retries=9, timeout=7))
    builder = JobBuilder(registry.settings, registry.tasks)
    job, body = builder.build(JobSpec("h", {"n": 1}))
    assert (job.priority, job.routing_key, job.max_retries, job.timeout) == (int(Priority.LOW), "rk", 9, 7.0)
    assert b'"name":"h"' in body
    explicit, _ = builder.build(JobSpec("h", {"n": 1}, priority=90, routing_key="x", max_retries=0, timeout=1))
    assert (explicit.priority, explicit.routing_key, explicit.max_retries, explicit.timeout) == (90, "x", 0, 1.0)
    with pytest.raises(PayloadError):
        builder.build(JobSpec("h", {"n": "one"}))
    with pytest.raises(ConfigurationError, match="max_retries"):
        TaskDefinition(handler, max_retries=-1)


def test_priority_fn_is_computed_at_submit(app: Bananas) -> None:
    @app.task(priority="low", priority_fn=lambda p: 90 if p["vip"] else "normal")
    def serve(vip: bool) -> None:
        return None

    @app.task(priority_fn=lambda p: p["missing"])
    def broken(x: int) -> None:
        return None

    @app.task(priority_fn=lambda p: 500)
    def wild(x: int) -> None:
        return None

    builder = JobBuilder(app.settings, app.registry.tasks)
    assert builder.build(JobSpec("serve", {"vip": True}))[0].priority == 90
    assert builder.build(JobSpec("serve", {"vip": False}))[0].priority == int(Priority.NORMAL)
    assert builder.build(JobSpec("serve", {"vip": True}, priority=10))[0].priority == 10  # the submit's wins
    with pytest.raises(PayloadError, match="priority_fn raised KeyError"):
        builder.build(JobSpec("broken", {"x": 1}))
    with pytest.raises(PayloadError, match="priority_fn returned no priority"):
        builder.build(JobSpec("wild", {"x": 1}))
    with pytest.raises(ConfigurationError, match="priority_fn must be a function"):
        TaskDefinition(lambda: None, name="odd", priority_fn=5)  # type: ignore[arg-type]
    stored = app.client.get_job(serve.submit(vip=True))
    assert stored is not None and stored.priority == 90
    app.client.close()
