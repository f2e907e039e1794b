"""Secret references are confined per tenant: tried with other spellings, other paths,
symbolic links, other tenants' names and tenant names crafted to collide."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from idp_common.events import SecretBinding
from idp_common.secret_values import (
    MAX_SECRET_BYTES,
    SecretOutsideConfinement,
    SecretResolver,
    SecretStoreSettings,
    SecretUnavailable,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for tenant, value in (("acme", "acme-db-password"), ("globex", "globex-db-password")):
        (tmp_path / tenant / "sub").mkdir(parents=True)
        (tmp_path / tenant / "db").write_text(value + "\n")
        (tmp_path / tenant / "sub" / "key").write_text(f"{tenant}-nested")
    return tmp_path


@pytest.fixture
def store(root: Path) -> SecretStoreSettings:
    return SecretStoreSettings(file_root=str(root))


def refused_rule(store: SecretStoreSettings, tenant: str, provider: str, key: str) -> str:
    with pytest.raises(SecretOutsideConfinement) as refusal:
        store.check(tenant, provider, key)
    return refusal.value.rule


@pytest.mark.parametrize(
    "key",
    [
        "SQS_SECRET_ACCESS_KEY",
        "WORKER_SEALING_PRIVATE_KEY",
        "AUTH_JWT_SECRET",
        "PATH",
        "IDP_SECRET_GLOBEX__DB",
        "idp_secret_acme__db",
        "IDP_SECRET_ACME__",
        "IDP_SECRET_ACME_DB",
        "IDP_SECRET_ACMEX__DB",
        "IDP_SECRET_ACME__DB-2",
        "IDP_SECRET_ACME__D B",
    ],
)
def test_env_references_stay_under_the_tenants_prefix(store: SecretStoreSettings, key: str) -> None:
    assert refused_rule(store, "acme", "env", key) == "env_outside_prefix"


def test_tenants_whose_names_would_collide_get_separate_prefixes(
    store: SecretStoreSettings,
) -> None:
    prefixes = {tenant: store.env_prefix_of(tenant) for tenant in ("a-b", "a_b", "A-b", "ab")}
    assert len(set(prefixes.values())) == 4
    store.check("a-b", "env", prefixes["a-b"] + "X")
    for other in ("a_b", "A-b", "ab"):
        assert refused_rule(store, other, "env", prefixes["a-b"] + "X") == "env_outside_prefix"
    folders = {store.tenant_folder(tenant) for tenant in ("a/b", "a_b", "a-b", "..", ".")}
    assert len(folders) == 5
    assert not {".", ".."} & folders
    assert all("/" not in folder for folder in folders)


@pytest.mark.parametrize("prefix", ["WORKER_", "AWS_", "SQS_X_", "LD_", "PATHS_", "lower_", "X"])
def test_an_env_prefix_reaching_the_platforms_own_variables_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="SECRETS_ENV_PREFIX"):
        SecretStoreSettings(env_prefix=prefix)


@pytest.mark.parametrize(
    "key",
    [
        "/etc/shadow",
        "../globex/db",
        "sub/../../globex/db",
        "sub//key",
        "./db",
        "db/.",
        "",
        "%2e%2e/globex/db",
        "..\\globex\\db",
        "db\n",
    ],
)
def test_file_references_stay_inside_the_tenants_folder(
    store: SecretStoreSettings, key: str
) -> None:
    assert refused_rule(store, "acme", "file", key) == "file_outside_root"


def test_without_a_file_root_the_file_provider_is_off() -> None:
    assert refused_rule(SecretStoreSettings(), "acme", "file", "db") == "file_provider_off"


@pytest.mark.parametrize(
    "key",
    [
        "idp/globex/db",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:idp/acme/db",
        "idp/acme/../globex/db",
        "idp/acme//db",
        "idp/acme/",
        "idp/acmex/db",
        "other/acme/db",
    ],
)
def test_aws_references_stay_under_the_tenants_prefix(store: SecretStoreSettings, key: str) -> None:
    assert refused_rule(store, "acme", "aws-secretsmanager", key) == "aws_outside_prefix"


def binding(provider: str, key: str) -> list[SecretBinding]:
    return [SecretBinding.model_validate({"env_var": "S", "provider": provider, "key": key})]


async def test_files_are_read_for_the_jobs_tenant_only(store: SecretStoreSettings) -> None:
    resolver = SecretResolver(store)
    assert await resolver.resolve("acme", binding("file", "db")) == {"S": "acme-db-password"}
    assert await resolver.resolve("acme", binding("file", "sub/key")) == {"S": "acme-nested"}
    assert await resolver.resolve("globex", binding("file", "db")) == {"S": "globex-db-password"}


@pytest.mark.parametrize(
    ("link", "target", "key"),
    [
        ("acme/host", "/etc/hostname", "host"),
        ("acme/theirs", "../globex/db", "theirs"),
        ("acme/jump", "{root}/globex", "jump/db"),
        ("evil", "{root}/globex", None),
    ],
)
async def test_symbolic_links_are_never_followed(
    store: SecretStoreSettings, root: Path, link: str, target: str, key: str | None
) -> None:
    (root / link).symlink_to(target.format(root=root))
    tenant, key = ("evil", "db") if key is None else ("acme", key)
    with pytest.raises(SecretUnavailable, match="symbolic links are not followed"):
        await SecretResolver(store).resolve(tenant, binding("file", key))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"abc\x00def-secret", "NUL byte"),
        (b"\xff\xfe binary secret", "not UTF-8"),
        (b"x" * (MAX_SECRET_BYTES + 1), "larger than"),
        (b"ab", "shorter than"),
    ],
)
async def test_a_value_that_cannot_be_used_safely_is_refused_with_the_reason(
    store: SecretStoreSettings, root: Path, content: bytes, reason: str
) -> None:
    (root / "acme" / "odd").write_bytes(content)
    with pytest.raises(SecretUnavailable, match=reason) as refusal:
        await SecretResolver(store).resolve("acme", binding("file", "odd"))
    assert "def-secret" not in str(refusal.value)


async def test_a_fifo_is_not_read(store: SecretStoreSettings, root: Path) -> None:
    os.mkfifo(root / "acme" / "pipe")
    with pytest.raises(SecretUnavailable, match="not a regular file"):
        await SecretResolver(store).resolve("acme", binding("file", "pipe"))


async def test_the_worker_own_environment_is_out_of_reach(
    store: SecretStoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQS_SECRET_ACCESS_KEY", "the-workers-own-key")
    monkeypatch.setenv("IDP_SECRET_ACME__TOKEN", "acme-token")
    resolver = SecretResolver(store)
    with pytest.raises(SecretOutsideConfinement):
        await resolver.resolve("acme", binding("env", "SQS_SECRET_ACCESS_KEY"))
    with pytest.raises(SecretOutsideConfinement):
        await resolver.resolve("globex", binding("env", "IDP_SECRET_ACME__TOKEN"))
    assert await resolver.resolve("acme", binding("env", "IDP_SECRET_ACME__TOKEN")) == {
        "S": "acme-token"
    }


class FakeSecretsManager:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.asked.append(SecretId)
        return {"SecretString": f"value-of-{SecretId}"}


async def test_aws_names_outside_the_prefix_are_never_asked_for(
    store: SecretStoreSettings,
) -> None:
    aws = FakeSecretsManager()
    resolver = SecretResolver(store, aws)
    assert await resolver.resolve("acme", binding("aws-secretsmanager", "idp/acme/db")) == {
        "S": "value-of-idp/acme/db"
    }
    with pytest.raises(SecretOutsideConfinement):
        await resolver.resolve("acme", binding("aws-secretsmanager", "idp/globex/db"))
    assert aws.asked == ["idp/acme/db"]
