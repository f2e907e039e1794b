"""Secrets are required outside development; placeholders are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from executor_worker.config import WorkerSettings
from idp_common.sealing import new_keypair, seal, unseal
from idp_common.settings import (
    DEV_SEALING_PRIVATE_KEY,
    DEV_SEALING_PUBLIC_KEY,
    AuthSettings,
    SealingSettings,
)
from panel_svc.config import PanelSettings
from tests.harness import AUTH


@pytest.mark.parametrize("environment", ["test", "production"])
@pytest.mark.parametrize("secret", [None, "changeme", "short-secret"])
def test_outside_development_a_real_jwt_secret_is_required(
    environment: str, secret: str | None
) -> None:
    with pytest.raises(ValidationError, match="AUTH_JWT_SECRET"):
        PanelSettings(environment=environment, auth=AuthSettings(jwt_secret=secret))


def test_development_runs_with_the_built_in_dev_secret() -> None:
    settings = PanelSettings(environment="development", auth=AuthSettings(jwt_secret=None))
    assert settings.auth.signing_secret().startswith("dev-only")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "must be set"),
        (DEV_SEALING_PUBLIC_KEY, "must be set"),
        ("not-a-key", "is not a base64 X25519 key"),
    ],
)
def test_outside_development_the_deployment_seals_to_its_own_key(
    key: str | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=f"SEALING_PUBLIC_KEY {message}"):
        PanelSettings(environment="test", auth=AUTH, sealing=SealingSettings(public_key=key))
    with pytest.raises(ValidationError, match=f"WORKER_SEALING_PRIVATE_KEY {message}"):
        WorkerSettings(
            environment="test",
            auth=AUTH,
            sealing_private_key=DEV_SEALING_PRIVATE_KEY if key == DEV_SEALING_PUBLIC_KEY else key,
        )


def test_the_workers_key_opens_what_the_services_seal() -> None:
    public, private = new_keypair()
    panel = PanelSettings(environment="test", auth=AUTH, sealing=SealingSettings(public_key=public))
    worker = WorkerSettings(environment="test", auth=AUTH, sealing_private_key=private)
    assert unseal(worker.opening_keys()[0], seal(panel.sealing.key(), "s3cret")) == "s3cret"
    in_development = seal(PanelSettings(environment="development").sealing.key(), "dev")
    assert (
        unseal(WorkerSettings(environment="development").opening_keys()[0], in_development) == "dev"
    )
