"""The development token CLI: usable against a development service, useless elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from idp_common.auth import Principal, TokenVerifier
from idp_common.errors import Unauthorized
from idp_common.settings import AuthSettings
from tests.harness import AUTH

COMMAND = [sys.executable, "-m", "idp_common.dev_token"]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("AUTH_")}
    return subprocess.run(
        [*COMMAND, *args], env=clean | env, capture_output=True, text=True, check=False
    )


async def test_minted_tokens_carry_the_tenant_roles_and_groups() -> None:
    minted = run("--tenant", "acme", "--subject", "bob", "--roles", "operator", "--groups", "dba")
    assert minted.returncode == 0, minted.stderr
    principal = await TokenVerifier(AuthSettings()).verify(minted.stdout.strip())
    assert principal == Principal("bob", "acme", frozenset({"operator"}), frozenset({"dba"}))
    # A deployment with its own secret does not accept them.
    with pytest.raises(Unauthorized):
        await TokenVerifier(AUTH).verify(minted.stdout.strip())


def test_it_refuses_outside_development_and_unknown_roles() -> None:
    refused = run(AUTH_JWT_SECRET="x" * 40)
    assert refused.returncode == 2
    assert "development only" in refused.stderr
    assert run("--roles", "root").returncode == 2
    assert run("--roles", "service").returncode == 2
