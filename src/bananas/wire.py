"""Job <-> JSON, versioned. See docs/WIRE.md for every field."""

from __future__ import annotations

from typing import Any

import msgspec

from bananas.errors import PayloadError, PayloadTooLarge
from bananas.job import WIRE_VERSION, Job

#: Default largest encoded job accepted by ``submit`` (1 MiB).
DEFAULT_MAX_JOB_BYTES = 1024 * 1024

_encoder = msgspec.json.Encoder()
_job_decoder = msgspec.json.Decoder(Job)
_any_decoder = msgspec.json.Decoder()
_TOO_DEEP = "nested too deeply to decode"
#: How much of an undecodable body a job read back shows (``Job.raw``).
RAW_EXCERPT_BYTES = 4096


def encode(value: Any) -> bytes:
    """Encode any JSON-able value.

    Raises:
        PayloadError: the value is not JSON-serialisable (or refers to itself, or is
            nested too deeply to encode).
    """
    try:
        return _encoder.encode(value)
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        raise PayloadError(f"value is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise PayloadError("value is not JSON-serialisable: it refers to itself or is nested too deeply") from None


def decode(data: bytes | str) -> Any:
    """Decode JSON text into plain Python values.

    Raises:
        PayloadError: the text is not valid JSON.
    """
    try:
        return _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(f"malformed JSON: {_TOO_DEEP}") from None


def encode_job(job: Job, max_bytes: int = DEFAULT_MAX_JOB_BYTES) -> bytes:
    """Encode a job for the broker.

    Raises:
        PayloadError: the payload is not JSON-serialisable.
        PayloadTooLarge: the encoded job exceeds ``max_bytes``.
    """
    data = encode(job)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"job {job.name!r} is {len(data)} bytes encoded, over the limit of {max_bytes} bytes")
    return data


def decode_job(data: bytes | str) -> Job:
    """Decode a job read from the broker.

    Raises:
        PayloadError: malformed JSON, a field of the wrong type, or an unknown version.
    """
    try:
        job = _job_decoder.decode(data)
    except msgspec.ValidationError as exc:
        version = _peek_version(data)
        if version is not None and version != WIRE_VERSION:
            raise PayloadError(f"unknown job envelope version {version!r}") from None
        raise PayloadError(f"invalid job envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"malformed job JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(f"malformed job JSON: {_TOO_DEEP}") from None
    if job.v != WIRE_VERSION:
        raise PayloadError(f"unknown job envelope version {job.v} (this Bananas reads version {WIRE_VERSION})")
    job.raw = None  # only a body that does not decode has one (set where it is read back)
    return job


def raw_excerpt(data: bytes | str) -> str:
    """The first ``RAW_EXCERPT_BYTES`` of a body, as text (bytes that are not UTF-8 are
    shown as ``\\xNN`` escapes), for a person to see what a malformed message was."""
    head = data[:RAW_EXCERPT_BYTES]
    return head.decode("utf-8", "backslashreplace") if isinstance(head, bytes) else head


def _peek_version(data: bytes | str) -> object:
    try:
        raw = _any_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return raw.get("v") if isinstance(raw, dict) else None
