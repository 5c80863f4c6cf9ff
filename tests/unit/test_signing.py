"""Job signatures on raw bytes: what signs, what verifies, what is refused, and why."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from bananas import wire
from bananas.errors import ConfigurationError
from bananas.job import Job, new_id
from bananas.settings import Settings
from bananas.signing import Signer, parse_keys

NEW, OLD = "n" * 32, "o" * 32


def body() -> bytes:
    return wire.encode_job(Job(id=new_id(), name="send", payload={"to": "a@b.c"}, created_at=time.time()))


def test_a_signed_body_verifies_and_still_decodes_as_the_same_job() -> None:
    raw = body()
    signed = Signer([NEW]).sign(raw)
    assert Signer([NEW]).check(signed) is None
    assert wire.decode_job(signed) == wire.decode_job(raw)
    assert len(json.loads(signed)["signature"]) == 64


def test_every_flipped_byte_is_refused() -> None:
    signer = Signer([NEW])
    signed = signer.sign(body())
    for i in range(len(signed)):
        flipped = signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :]
        assert signer.check(flipped) is not None, f"byte {i} flipped and still accepted"


def test_rotation_the_first_key_signs_and_every_key_verifies() -> None:
    by_old = Signer([OLD]).sign(body())
    rotated = Signer([NEW, OLD])
    assert rotated.check(by_old) is None
    assert Signer([NEW]).check(by_old) == (
        "the job's signature matches none of the signing keys: it was altered or signed with another key"
    )
    assert Signer([OLD]).check(rotated.sign(body())) is not None  # the new key signs


def test_unsigned_bodies_are_refused_unless_signing_is_optional() -> None:
    raw = body()
    assert Signer([NEW]).check(raw) == "the job is not signed, and this worker requires signed jobs"
    assert Signer([NEW], required=False).check(raw) is None
    assert Signer([NEW], required=False).check(Signer([OLD]).sign(raw)) is not None  # a bad signature still fails
    assert Signer([NEW]).check(b"") is not None and Signer([NEW]).check("not json") is not None


def test_keys_from_the_environment_and_never_in_reprs_or_errors() -> None:
    s = Settings.from_env({"BANANAS_SIGNING_KEYS": f" {NEW} ,{OLD},", "BANANAS_SIGNING_REQUIRED": "false"})
    assert s.signing.keys == (NEW, OLD) and not s.signing.required
    signer = s.signing.signer()
    assert signer is not None and NEW not in repr(s) and NEW not in repr(signer) and OLD not in repr(s)
    assert Settings.from_env({}).signing.signer() is None
    with pytest.raises(ConfigurationError) as caught:
        parse_keys(f"{NEW},short-secret")
    assert "key 2 has 12 characters" in str(caught.value) and "short-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "key", ["k" * 16, "a-key-of-exactly-sixty-four-bytes-for-the-block-size-boundary!!!", "long" * 40]
)
def test_the_signature_is_the_standard_hmac_sha256_of_the_unsigned_body(key: str) -> None:
    raw = body()
    digest = json.loads(Signer([key]).sign(raw))["signature"]
    assert digest == hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()  # any language can check it
