"""Reading configuration values from an environment mapping (``Settings.from_env``)."""

from __future__ import annotations

from collections.abc import Mapping

from bananas.durations import parse_duration
from bananas.errors import ConfigurationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Other names accepted for a level (the ones the ``logging`` module knows too).
LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def parse_log_level(text: str, name: str = "LOG_LEVEL") -> str:
    """``"warn"``, ``"Warning"``, ``"debug"`` ... -> the level's name (``"WARNING"``).

    Raises:
        ConfigurationError: one line naming ``name`` and the value, and listing the levels.
    """
    level = text.strip().upper()
    level = LOG_LEVEL_ALIASES.get(level, level)
    if level not in LOG_LEVELS:
        raise ConfigurationError(
            f"{name}={text!r} is not a log level: use debug, info, warning (or warn), error or critical"
        )
    return level


class EnvReader:
    """Typed reads of an environment mapping; a bad value is one line naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value.strip() if value and value.strip() else None

    def integer(self, name: str, default: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {value!r}") from None

    def number(self, name: str, default: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {value!r}") from None

    def duration(self, name: str, default: float) -> float:
        """Seconds, with an optional unit: ``10``, ``10s``, ``500ms``, ``5m``, ``2h``, ``1d``."""
        value = self.text(name)
        return default if value is None else parse_duration(value, name)

    def level(self, name: str, default: str) -> str:
        """A log level name, any case, ``warn`` for ``WARNING``."""
        value = self.text(name)
        return default if value is None else parse_log_level(value, name)

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")

    def names(self, name: str) -> tuple[str, ...]:
        value = self.text(name)
        if value is None:
            return ()
        return tuple(k.strip() for k in value.split(",") if k.strip())


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and messages: ``redis://user:pw@h/0`` ->
    ``redis://user@h/0`` (a password may itself hold ``@`` or ``:``)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    creds, _, host = netloc.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + '@' if user else ''}{host}{slash}{path}"
