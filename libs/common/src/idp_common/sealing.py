"""Secret values sealed to the executor workers.

panel-svc and operation-svc hold only the workers' public key: the moment a secret value
arrives they seal it (an anonymous X25519 + XSalsa20-Poly1305 sealed box), so their
databases, outboxes, the queues and retries carry ciphertext that only a worker, holding
the private key, can open, right before it starts the command that needs the value.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Sequence

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

SEALED_PREFIX = "sealed:v1:"
KEY_BYTES = 32


class UnsealFailed(Exception):
    """A token that is not sealed to this key, or was altered; never holds a value."""


def decode_key(encoded: str) -> bytes:
    """The raw bytes of a base64 X25519 key (public or private); ValueError otherwise."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a key is {KEY_BYTES} bytes, this is {len(raw)}")
    return raw


def load_public_key(encoded: str) -> PublicKey:
    return PublicKey(decode_key(encoded))


def load_private_key(encoded: str) -> PrivateKey:
    return PrivateKey(decode_key(encoded))


def new_keypair() -> tuple[str, str]:
    """A fresh (public, private) pair, base64: the private one goes to the workers only."""
    private = PrivateKey.generate()
    return (
        base64.b64encode(bytes(private.public_key)).decode(),
        base64.b64encode(bytes(private)).decode(),
    )


def seal(public_key: PublicKey, plaintext: str) -> str:
    """``plaintext`` sealed to ``public_key``: ``sealed:v1:<base64>``."""
    ciphertext = SealedBox(public_key).encrypt(plaintext.encode())
    return SEALED_PREFIX + base64.b64encode(ciphertext).decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def unseal_with_any(private_keys: Sequence[PrivateKey], token: str) -> str:
    """The plaintext of a token sealed to any of ``private_keys`` (a rotation keeps the
    retired keys until nothing sealed to them is pending or retried)."""
    for key in private_keys[:-1]:
        with contextlib.suppress(UnsealFailed):
            return unseal(key, token)
    return unseal(private_keys[-1], token)


def unseal(private_key: PrivateKey, token: str) -> str:
    """The plaintext of a token sealed to ``private_key``'s public key."""
    if not is_sealed(token):
        raise UnsealFailed("not a sealed value")
    try:
        ciphertext = base64.b64decode(token.removeprefix(SEALED_PREFIX), validate=True)
        return SealedBox(private_key).decrypt(ciphertext).decode()
    except (binascii.Error, CryptoError, UnicodeDecodeError):
        raise UnsealFailed("not sealed to this worker's key, or altered") from None
