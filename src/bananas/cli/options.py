"""What every command shares: the ``--url`` option, settings built at the edge, app
loading and the mapping from library errors to one-line messages and exit codes."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

import click

from bananas.app import Bananas
from bananas.cli.logs import configure_logging
from bananas.durations import parse_duration
from bananas.errors import BananasError, ConfigurationError, PayloadError
from bananas.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for bad input (options, payloads, configuration), as click uses for usage errors.
EXIT_USAGE = 2
#: Exit code for everything else that went wrong (broker down, unknown job, ...).
EXIT_FAILURE = 1


class CLIError(click.ClickException):
    """Printed as one line, ``error: <message>``, on stderr; the process exits with 1."""

    exit_code = EXIT_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)

    @staticmethod
    def from_error(exc: BananasError) -> CLIError:
        """Bad input (configuration, payload) exits 2; anything else exits 1."""
        bad_input = isinstance(exc, ConfigurationError | PayloadError)
        return BadInput(str(exc)) if bad_input else CLIError(str(exc))


class BadInput(CLIError):
    """Bad options, payload or configuration: ``error: <message>``, exit code 2."""

    exit_code = EXIT_USAGE


class DurationType(click.types.FloatParamType):  # a float type: no type arguments, on any click 8
    """A flag that is a duration: ``30s``, ``5m``, ``2h``, ``1d``, ``500ms`` or seconds.

    Converts to float seconds. A bad value is one line naming the flag and exit code 2,
    like every other bad input: ``error: --lease='soon' is not a duration: use ...``.

    Args:
        minimum: the least value allowed, in seconds.
        strict: the minimum itself is not allowed (``--lease 0`` is refused).
    """

    name = "duration"

    def __init__(self, minimum: float = 0.0, *, strict: bool = False) -> None:
        self.minimum = minimum
        self.strict = strict

    def __repr__(self) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        flag = param.opts[0] if param is not None and param.opts else "duration"
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)  # a default given in code
        else:
            try:
                seconds = parse_duration(str(value), flag)
            except ConfigurationError as exc:
                raise BadInput(str(exc)) from None
        if seconds < self.minimum or (self.strict and seconds == self.minimum):
            bound = "more than" if self.strict else "at least"
            raise BadInput(f"{flag}={value!r} must be {bound} {self.minimum:g} seconds")
        return seconds


#: A duration flag that must be more than 0 (a lease, a TTL, a timeout).
POSITIVE_DURATION = DurationType(0.0, strict=True)
#: A duration flag that may be 0 (a grace period, a delay).
DURATION = DurationType(0.0)


def url_option(fn: F) -> F:
    """Add ``--url`` (default: BANANAS_URL, else REDIS_URL, else the embedded SQLite file)."""
    return click.option(
        "--url",
        default=None,
        metavar="URL",
        help="Broker URL [default: BANANAS_URL, else REDIS_URL, else sqlite:///bananas.db].",
    )(fn)


def ttl_options(fn: F) -> F:
    """Add ``--completed-ttl`` and ``--failed-ttl`` (retention of finished job records)."""
    fn = click.option(
        "--failed-ttl",
        type=POSITIVE_DURATION,
        default=None,
        metavar="DURATION",
        help="Keep dead-lettered jobs this long [env BANANAS_FAILED_TTL, default 7d].",
    )(fn)
    return click.option(
        "--completed-ttl",
        type=POSITIVE_DURATION,
        default=None,
        metavar="DURATION",
        help="Keep completed jobs and their results this long [env BANANAS_COMPLETED_TTL, default 1h].",
    )(fn)


def ttl_flags(completed_ttl: float | None, failed_ttl: float | None) -> dict[str, object]:
    """The ``jobs`` argument of ``build_settings`` for the two flags of ``ttl_options``."""
    return {"completed_ttl_s": completed_ttl, "failed_ttl_s": failed_ttl}


def build_settings(
    url: str | None = None,
    app: Bananas | None = None,
    *,
    jobs: Mapping[str, object] | None = None,
    **worker: object,
) -> Settings:
    """Build the one ``Settings`` object of this process and configure logging from it.

    Defaults, then the environment, then the flags. The URL is ``--url`` if given, else
    the app's own URL (which ``Bananas()`` reads from the same environment), else the
    environment's.

    Args:
        url: the ``--url`` flag.
        app: the loaded ``--app``, if the command has one.
        jobs: job-default flags for ``Settings.with_jobs`` (``completed_ttl_s``,
            ``failed_ttl_s``); ``None`` values mean not given.
        **worker: worker flags for ``Settings.with_worker``; ``None`` means not given.

    Raises:
        ConfigurationError: an environment variable or flag has a bad value.
    """
    settings = Settings.from_env(os.environ)
    chosen = url or (app.url if app is not None else None)
    if chosen:
        settings = dataclasses.replace(settings, url=chosen)
    if worker:
        settings = settings.with_worker(**worker)
    if jobs:
        settings = settings.with_jobs(**jobs)
    configure_logging(settings.log_level, settings.log_format, settings.logs)
    return settings


def load_app(ref: str) -> Bananas:
    """Import ``MODULE:ATTR`` (the current directory is searched first, as rq and arq do).

    Raises:
        BadInput: the reference is malformed, the module is missing, or the attribute is
            not a ``Bananas`` app. Errors raised by the module's own code propagate with
            their traceback, which is what its author needs.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise BadInput(f"--app must look like MODULE:ATTR (e.g. myproject.tasks:app), got {ref!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise BadInput(f"cannot import {module_name!r} for --app {ref}: {exc}") from None
        raise
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BadInput(f"module {module_name!r} has no attribute {attr!r} (--app {ref})") from None
    if not isinstance(obj, Bananas):
        raise BadInput(f"--app {ref} is a {type(obj).__name__}, not a Bananas app")
    return obj
