"""Signed jobs: an HMAC-SHA256 over the encoded job, checked before a worker decodes it.

``BANANAS_SIGNING_KEYS`` holds comma-separated keys. The first signs every job that
``JobBuilder`` builds; every key verifies, so a key is rotated by putting the new one first
on the verifying side, then on the signing side, then dropping the old one. With keys set,
a worker dead-letters an unsigned or altered job as ``signature_invalid`` without running
it (``BANANAS_SIGNING_REQUIRED=false`` lets unsigned jobs run while signing is rolled out).

The signature is the last member of the job object: the encoded job without it, then
``,"signature":"<64 hex digits>"}``. So a worker checks it on the raw bytes, with no JSON
decoding, and readers that do not know the field ignore it (docs/WIRE.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from bananas.errors import ConfigurationError

#: What precedes the hex digest at the end of a signed body.
_HEAD = b',"signature":"'
_HEX = 64  # SHA-256, hex
_TAIL = b'"}'
_SUFFIX = len(_HEAD) + _HEX + len(_TAIL)
#: Shortest key accepted: anything shorter is guessable offline from one signed job.
MIN_KEY_CHARS = 16


def parse_keys(text: str | None) -> tuple[str, ...]:
    """Split ``BANANAS_SIGNING_KEYS`` (comma-separated, blanks ignored).

    Raises:
        ConfigurationError: a key is shorter than ``MIN_KEY_CHARS``.
    """
    keys = tuple(k.strip() for k in (text or "").split(",") if k.strip())
    check_keys(keys)
    return keys


def check_keys(keys: Sequence[str]) -> None:
    """Refuse keys shorter than ``MIN_KEY_CHARS``, naming the position, never the key.

    Raises:
        ConfigurationError: a key is too short.
    """
    for i, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"BANANAS_SIGNING_KEYS: key {i} has {len(key)} characters, fewer than {MIN_KEY_CHARS} "
                "(make one with: openssl rand -hex 32)"
            )


class Signer:
    """Signs encoded jobs with the first key and verifies them with any key.

    Args:
        keys: the signing keys, newest first (at least one).
        required: whether a body without a signature is refused.
    """

    __slots__ = ("_keys", "required")

    def __init__(self, keys: Sequence[str], *, required: bool = True) -> None:
        if not keys:
            raise ConfigurationError("a Signer needs at least one key")
        self._keys = tuple(_Key(k.encode()) for k in keys)
        self.required = required

    def __repr__(self) -> str:
        return f"Signer({len(self._keys)} keys, required={self.required})"  # never the keys

    def sign(self, body: bytes) -> bytes:
        """``body`` (an encoded job object) with its signature as the last member."""
        return body[:-1] + _HEAD + self._keys[0].hexdigest(body) + _TAIL

    def check(self, body: bytes | bytearray | memoryview | str) -> str | None:
        """``None`` when the body may run; otherwise why it may not."""
        raw = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else bytes(body)
        if len(raw) <= _SUFFIX or raw[-_SUFFIX : -_HEX - len(_TAIL)] != _HEAD or not raw.endswith(_TAIL):
            return "the job is not signed, and this worker requires signed jobs" if self.required else None
        signed, digest = memoryview(raw)[:-_SUFFIX], raw[-_HEX - len(_TAIL) : -len(_TAIL)]  # signed + b"}"
        if any(hmac.compare_digest(key.hexdigest(signed, b"}"), digest) for key in self._keys):
            return None
        return "the job's signature matches none of the signing keys: it was altered or signed with another key"


class _Key:
    """HMAC-SHA256 (RFC 2104) with the padded key's hash states computed once: a job's
    signature then costs two hash copies, not a fresh ``hmac.new`` (half the time)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, *message: bytes | memoryview) -> bytes:
        """The hex HMAC of the concatenated ``message`` parts."""
        inner = self._inner.copy()
        for part in message:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode()
