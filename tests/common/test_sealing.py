"""Sealed secret values: only the private key of the pair opens them, and they are checked."""

from __future__ import annotations

import base64

import pytest

from idp_common.sealing import (
    SEALED_PREFIX,
    UnsealFailed,
    is_sealed,
    load_private_key,
    load_public_key,
    new_keypair,
    seal,
    unseal,
    unseal_with_any,
)
from idp_common.settings import DEV_SEALING_PRIVATE_KEY, DEV_SEALING_PUBLIC_KEY

PUBLIC, PRIVATE = new_keypair()


def test_a_sealed_value_opens_with_the_private_key_of_its_pair() -> None:
    secret = "correct horse battery staple ünïcode\n"
    token = seal(load_public_key(PUBLIC), secret)
    assert token.startswith(SEALED_PREFIX)
    assert is_sealed(token)
    assert secret not in token
    assert seal(load_public_key(PUBLIC), secret) != token  # a fresh ephemeral key each time
    assert unseal(load_private_key(PRIVATE), token) == secret


def test_another_key_an_altered_token_or_plain_text_cannot_be_opened() -> None:
    token = seal(load_public_key(PUBLIC), "correct-horse")
    _, other_private = new_keypair()
    raw = bytearray(base64.b64decode(token.removeprefix(SEALED_PREFIX)))
    raw[-1] ^= 1
    altered = SEALED_PREFIX + base64.b64encode(raw).decode()
    for wrong in (
        (load_private_key(other_private), token),
        (load_private_key(PRIVATE), altered),
        (load_private_key(PRIVATE), "correct-horse"),
        (load_private_key(PRIVATE), SEALED_PREFIX + "not base64!"),
    ):
        with pytest.raises(UnsealFailed) as failed:
            unseal(*wrong)
        assert "correct-horse" not in str(failed.value)


@pytest.mark.parametrize(
    "key",
    ["not base64!", base64.b64encode(b"too short").decode(), PUBLIC + "AAAA"],
    ids=["not-base64", "too-short", "too-long"],  # PUBLIC is new in each process
)
def test_a_key_must_be_32_bytes_of_base64(key: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        load_public_key(key)


def test_the_development_keys_are_a_pair() -> None:
    token = seal(load_public_key(DEV_SEALING_PUBLIC_KEY), "development")
    assert unseal(load_private_key(DEV_SEALING_PRIVATE_KEY), token) == "development"


def test_after_a_rotation_values_sealed_to_the_retired_key_still_open() -> None:
    old_public, old_private = new_keypair()
    new_public, new_private = new_keypair()
    before = seal(load_public_key(old_public), "sealed before the rotation")
    after = seal(load_public_key(new_public), "sealed after it")
    keys = [load_private_key(new_private), load_private_key(old_private)]
    assert unseal_with_any(keys, before) == "sealed before the rotation"
    assert unseal_with_any(keys, after) == "sealed after it"
    with pytest.raises(UnsealFailed):
        unseal_with_any(keys[:1], before)
