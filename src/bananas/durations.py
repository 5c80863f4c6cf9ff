"""Durations as users write them: ``30s``, ``5m``, ``2h``, ``1d``, ``500ms`` or plain seconds.

The one parser behind every duration bananas reads: environment variables
(``JOB_TIMEOUT``, ``SCHEDULER_INTERVAL``, ``BANANAS_FAILED_TTL``, ...), CLI flags
(``--lease``, ``--grace``, ``--completed-ttl``, ...) and string arguments of the client
(``delay="5m"``). Plain data: it imports only the errors.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import TypeAlias

from bananas.errors import ConfigurationError

#: What a public argument that is a duration accepts (converted once by ``job.to_seconds``).
Duration: TypeAlias = float | timedelta | str

#: Seconds per unit suffix.
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: What a duration may look like, for error messages.
ACCEPTED = "use seconds or a number with ms, s, m, h or d (30s, 5m, 2h, 1d)"

# A decimal number (sign and exponent allowed, as float() takes them) and an optional
# unit, with optional spaces between them: "90", "1.5h", "500 ms", "-1".
_DURATION_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(ms|s|m|h|d)?", re.IGNORECASE)


def parse_duration(text: str, name: str = "duration") -> float:
    """Turn ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"500ms"`` or ``"90"`` into seconds.

    The sign is kept (``"-1"`` is -1.0): whether a value is in range is for the caller to
    say, in terms of what the value is for.

    Args:
        text: the value as written; surrounding spaces and the unit's case do not matter.
        name: what the value is (``JOB_TIMEOUT``, ``--lease``, ``delay``), for the error.

    Returns:
        The duration in seconds.

    Raises:
        ConfigurationError: one line naming ``name``, the value and what is accepted, e.g.
            ``JOB_TIMEOUT='5 minutes' is not a duration: use seconds or a number with ...``.
    """
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(f"{name}={text!r} is not a duration: {ACCEPTED}")
    number, unit = match.groups()
    seconds = float(number) * UNITS[(unit or "s").lower()]
    if not math.isfinite(seconds):
        raise ConfigurationError(f"{name}={text!r} is not a duration: {ACCEPTED}")
    return seconds
