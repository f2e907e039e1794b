"""A service loads cryptography only when its settings accept asymmetric tokens
(``idp_common.cryptography_use``): PyJWT would import it whatever the algorithm. Run as
`make run` runs a service, through ``service_main``, in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SERVICE = """
import json, sys
from idp_common.cli import service_main
from idp_common.settings import ServiceSettings


def create_app(settings):
    from idp_common.auth import mint_token
    import jwt

    token = mint_token(settings.auth, subject="someone", tenant="demo", roles=["viewer"])
    claims = jwt.decode(
        token, settings.auth.signing_secret(), algorithms=["HS256"], audience="idp"
    )
    loaded = sys.modules.get("cryptography") is not None
    print(json.dumps({"cryptography": loaded, "subject": claims["sub"]}))
    raise SystemExit(0)


service_main(
    name="probe", settings_class=ServiceSettings, create_app="__main__:create_app", argv=[]
)
"""


@pytest.mark.parametrize(
    ("accepted", "loaded"),
    [
        ({"AUTH_JWT_ALGORITHMS": "HS256"}, False),
        (
            {"AUTH_JWT_ALGORITHMS": "HS256,RS256", "AUTH_JWKS_URL": "https://idp.example/jwks"},
            True,
        ),
    ],
)
def test_cryptography_is_loaded_only_where_asymmetric_tokens_are_accepted(
    accepted: dict[str, str], loaded: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")} | accepted
    finished = subprocess.run(
        [sys.executable, "-c", SERVICE], env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    answer = json.loads(finished.stdout.splitlines()[-1])
    assert answer == {"cryptography": loaded, "subject": "someone"}
