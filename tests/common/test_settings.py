"""Secrets are required outside development; placeholders are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from idp_common.settings import AuthSettings
from panel_svc.config import PanelSettings


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
