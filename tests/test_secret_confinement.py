"""From outside: a tenant admin cannot make a command read the host's files, the worker's
own environment or another tenant's secrets; and whatever a secret holds, its run ends in a
final state with the reason (NUL bytes and binary files once left runs ``lost``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from idp_common.secret_values import SecretStoreSettings
from tests.factories import secret_reference
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

ADMIN = auth_headers(roles=("admin",))
GLOBEX = auth_headers(tenant="globex", roles=("admin",))


async def run_with_secret(platform: Platform, secret_id: str) -> dict[str, Any]:
    slug = f"t-{uuid.uuid4().hex[:8]}"
    template = await platform.operation.post(
        "/api/v1/templates",
        json={"slug": slug, "name": "show", "command_template": "printenv SECRET_VALUE"},
        headers=ADMIN,
    )
    assert template.status_code == 201, template.text
    mapped = await platform.operation.post(
        f"/api/v1/templates/{template.json()['id']}/secrets",
        json={"secret_id": secret_id, "env_var": "SECRET_VALUE"},
        headers=ADMIN,
    )
    assert mapped.status_code == 201, mapped.text
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": slug, "parameters": {}}, headers=ADMIN
    )
    assert started.status_code == 202, started.text

    async def ended() -> dict[str, Any] | None:
        response = await platform.operation.get(
            f"/api/v1/executions/{started.json()['id']}", headers=ADMIN
        )
        body: dict[str, Any] = response.json()
        return body if body["status"] not in ("pending", "running") else None

    return await eventually(ended, timeout=20)


async def output_of(platform: Platform, execution_id: str) -> str:
    logs = await platform.operation.get(f"/api/v1/executions/{execution_id}/logs", headers=ADMIN)
    return "\n".join(line["message"] for line in logs.json()["items"])


async def test_references_outside_the_tenants_confinement_are_refused_at_creation(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    store = SecretStoreSettings(file_root=str(tmp_path / "secrets"))
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, operation={"secret_store": store}
    ) as platform:
        attempts = [
            ("file", "/etc/shadow", "file_outside_root"),
            ("file", "../globex/db", "file_outside_root"),
            ("env", "SQS_SECRET_ACCESS_KEY", "env_outside_prefix"),
            ("env", "WORKER_SEALING_PRIVATE_KEY", "env_outside_prefix"),
            ("env", "IDP_SECRET_GLOBEX__DB", "env_outside_prefix"),
            ("aws-secretsmanager", "idp/globex/db", "aws_outside_prefix"),
        ]
        for provider, key, rule in attempts:
            response = await secret_reference(platform, provider, key)
            assert response.status_code == 422, (key, response.text)
            error = response.json()["errors"][0]
            assert (error["field"], error["code"]) == ("key", rule)
            assert "SECRETS_" in error["message"]
        assert (await secret_reference(platform, "env", "IDP_SECRET_ACME__DB")).status_code == 201
        assert (
            await secret_reference(platform, "env", "IDP_SECRET_ACME__DB", GLOBEX)
        ).status_code == 422
        listed = await platform.operation.get("/api/v1/secrets", headers=ADMIN)
        assert [item["key"] for item in listed.json()["items"]] == ["IDP_SECRET_ACME__DB"]


async def test_the_worker_refuses_a_reference_outside_the_jobs_tenant(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """References saved under another configuration (here operation-svc's prefix differs)
    are checked again by the worker, for the job's tenant."""
    monkeypatch.setenv("LEGACY_ACME__TOKEN", "legacy-token-value")
    legacy = SecretStoreSettings(env_prefix="LEGACY_")
    async with running_platform(
        "sqlite", tmp_path, sqs_server, operation={"secret_store": legacy}
    ) as platform:
        saved = await secret_reference(platform, "env", "LEGACY_ACME__TOKEN")
        assert saved.status_code == 201, saved.text
        execution = await run_with_secret(platform, saved.json()["id"])
        assert execution["status"] == "failed"
        assert "SECRETS_ENV_PREFIX" in execution["error"]
        assert "legacy-token-value" not in await output_of(platform, execution["id"])


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"abc\x00def-value", "NUL byte"), (b"\xff\xfe\x00binary", "not UTF-8")],
    ids=["nul", "binary"],
)
async def test_a_secret_that_cannot_be_used_ends_the_run_failed_not_lost(
    tmp_path: Path, sqs_server: LocalSQSServer, content: bytes, reason: str
) -> None:
    root = tmp_path / "secrets"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "odd").write_bytes(content)
    store = SecretStoreSettings(file_root=str(root))
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        operation={"secret_store": store, "lost_after_seconds": 3},
        worker={"secret_store": store},
    ) as platform:
        saved = await secret_reference(platform, "file", "odd")
        assert saved.status_code == 201, saved.text
        execution = await run_with_secret(platform, saved.json()["id"])
        assert execution["status"] == "failed"
        assert reason in execution["error"]


CODE_CHANGING = [
    "BASH_ENV",
    "ENV",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "HOSTALIASES",
    "NODE_OPTIONS",
    "PERL5OPT",
    "RUBYOPT",
    "SHELLOPTS",
    "PS4",
    "JAVA_TOOL_OPTIONS",
    "MALLOC_CHECK_",
    "LD_PRELOAD",
    "PATH",
    "PYTHONSTARTUP",
]


async def test_a_secret_may_not_set_a_variable_that_changes_what_code_runs(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused when mapped; and a mapping saved before that rule (the check switched off
    here) is refused by the worker when it runs."""
    monkeypatch.setenv("IDP_SECRET_ACME__PLAIN", "plain-secret-value")
    async with running_platform("sqlite", tmp_path, sqs_server) as platform:
        secret = (await secret_reference(platform, "env", "IDP_SECRET_ACME__PLAIN")).json()["id"]
        slug = f"t-{uuid.uuid4().hex[:8]}"
        created = await platform.operation.post(
            "/api/v1/templates",
            json={"slug": slug, "name": "show", "command_template": "printenv BASH_ENV"},
            headers=ADMIN,
        )
        mappings = f"/api/v1/templates/{created.json()['id']}/secrets"
        for name in CODE_CHANGING:
            refused = await platform.operation.post(
                mappings, json={"secret_id": secret, "env_var": name}, headers=ADMIN
            )
            assert refused.status_code == 422, (name, refused.text)
            assert refused.json()["errors"][0]["field"] == "env_var", name
        with monkeypatch.context() as before_the_rule:
            before_the_rule.setattr(
                "operation_svc.secrets.schemas.unsafe_variable", lambda _: False
            )
            before_the_rule.setattr("operation_svc.secrets.schemas.RESERVED_ENV", frozenset())
            saved = await platform.operation.post(
                mappings, json={"secret_id": secret, "env_var": "BASH_ENV"}, headers=ADMIN
            )
            assert saved.status_code == 201, saved.text
        started = await platform.operation.post(
            "/api/v1/executions", json={"template": slug}, headers=ADMIN
        )

        async def ended() -> dict[str, Any] | None:
            response = await platform.operation.get(
                f"/api/v1/executions/{started.json()['id']}", headers=ADMIN
            )
            body: dict[str, Any] = response.json()
            return body if body["status"] not in ("pending", "running") else None

        execution = await eventually(ended, timeout=20)
        assert execution["status"] == "failed"
        assert "BASH_ENV may not be set" in execution["error"]
        assert await output_of(platform, execution["id"]) == ""
