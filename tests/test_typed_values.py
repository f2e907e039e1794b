"""One coercion rule on every intake: numbers and booleans are accepted as JSON values or as
their plain text, and stored as the declared type; a command receives their text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idp_common.values import MAX_TEXT_LENGTH, as_number, as_text
from tests.factories import panel_for, template
from tests.harness import (
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
PARAMETERS = [
    {"name": "replicas", "type": "integer"},
    {"name": "ratio", "type": "number"},
    {"name": "dry", "type": "boolean"},
]


async def execution_of(platform: Platform, submission_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (
            await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        ).json()
        return body if body["execution_id"] else None

    submission = await eventually(probe)
    response = await platform.operation.get(
        f"/api/v1/executions/{submission['execution_id']}", headers=ADMIN
    )
    return dict(response.json())


async def test_both_intakes_take_numbers_and_booleans_as_values_or_text(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        scale = await template(platform, "scale", "echo {{replicas}} {{ratio}} {{dry}}", PARAMETERS)
        await panel_for(platform, scale, replicas="integer", ratio="number", dry="boolean")
        typed = {"replicas": 3, "ratio": 2.5, "dry": True}
        for values in (typed, {"replicas": "3", "ratio": "2.5", "dry": "true"}):
            direct = await platform.operation.post(
                "/api/v1/executions",
                json={"template": "scale", "parameters": values},
                headers=ADMIN,
            )
            assert direct.status_code == 202, direct.text
            submitted = await platform.panel.post(
                "/api/v1/panels/scale/submissions", json={"data": values}, headers=ADMIN
            )
            assert submitted.status_code == 202, submitted.text
            assert submitted.json()["data"] == typed
            for execution in (direct.json(), await execution_of(platform, submitted.json()["id"])):
                assert execution["parameters"] == typed
                assert execution["argv"] == ["echo", "3", "2.5", "true"]
            preview = await platform.operation.post(
                "/api/v1/templates/scale/preview", json={"parameters": values}, headers=ADMIN
            )
            assert preview.json()["argv"] == ["echo", "3", "2.5", "true"], preview.text
        for bad in ({"replicas": "3 "}, {"replicas": "0x3"}, {"dry": "yes"}, {"ratio": "nan"}):
            refused = await platform.operation.post(
                "/api/v1/executions",
                json={"template": "scale", "parameters": typed | bad},
                headers=ADMIN,
            )
            assert refused.status_code == 422, bad
            form = await platform.panel.post(
                "/api/v1/panels/scale/submissions", json={"data": typed | bad}, headers=ADMIN
            )
            assert form.status_code == 422, bad
            preview = await platform.operation.post(
                "/api/v1/templates/scale/preview",
                json={"parameters": typed | bad},
                headers=ADMIN,
            )
            assert [r["parameter"] for r in preview.json()["refusals"]] == list(bad), bad


BEYOND_A_FLOAT = 2**53 + 1


async def test_integers_a_definition_keeps_are_exact_where_they_are_read(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A default, an enum value or a bound is read as a float (bounds are kept as floats, a
    form reads a number as JavaScript's, SQLite stored a default past 2**63 as a REAL): one
    past 2**53 is refused when saved, naming it. A panel's default of 2**80 was saved, came
    back from SQLite as 1.2e24, and every submission without it was a 422 blaming the user.
    A value is any integer written as digits, and a body's integers fit 64 bits."""
    async with running_platform(
        backend, tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as platform:
        assert platform.datasource is not None
        scale = await template(platform, "scale", "echo {{replicas}} {{ratio}} {{dry}}", PARAMETERS)
        await panel_for(platform, scale, replicas="integer", ratio="number", dry="boolean")
        integer = {"name": "replicas", "label": "Replicas", "field_type": "integer"}
        ratio = {"name": "ratio", "label": "Ratio", "field_type": "number"}
        dry = {"name": "dry", "label": "Dry", "field_type": "boolean"}

        def panel(*fields: dict[str, Any]) -> dict[str, Any]:
            return {"slug": "p", "title": "P", "operation_template": "scale", "fields": fields}

        def parameters(**replicas: Any) -> dict[str, Any]:
            return {"parameters": [PARAMETERS[0] | replicas, *PARAMETERS[1:]]}

        http = {"url": "https://example.com/", "method": "POST"}
        refusals = [
            (
                platform.panel.post,
                "/api/v1/panels",
                panel(integer | {"default": 2**80}, ratio, dry),
                "fields.0.default",
            ),
            (
                platform.panel.post,
                "/api/v1/panels",
                panel(integer | {"default": -BEYOND_A_FLOAT}, ratio, dry),
                "fields.0.default",
            ),
            (
                platform.panel.post,
                "/api/v1/panels",
                panel(integer, ratio | {"default": 10**25 + 1}, dry),
                "fields.1.default",
            ),
            (
                platform.panel.post,
                "/api/v1/panels",
                panel(integer | {"min_value": BEYOND_A_FLOAT}, ratio, dry),
                "fields.0.min_value",
            ),
            (
                platform.panel.patch,
                "/api/v1/panels/scale",
                {"fields": [integer | {"max_value": -(2**80)}, ratio, dry]},
                "fields.0.max_value",
            ),
            (
                platform.panel.patch,
                "/api/v1/panels/scale",
                {"fields": [integer | {"default": 2**80}, ratio, dry]},
                "fields.0.default",
            ),
            (
                platform.operation.patch,
                "/api/v1/templates/scale",
                parameters(default=2**80),
                "parameters.0.default",
            ),
            (
                platform.operation.patch,
                "/api/v1/templates/scale",
                parameters(enum=[1, BEYOND_A_FLOAT]),
                "parameters.0.enum.1",
            ),
            (
                platform.operation.patch,
                "/api/v1/templates/scale",
                parameters(minimum=-BEYOND_A_FLOAT),
                "parameters.0.minimum",
            ),
            (
                platform.operation.patch,
                "/api/v1/templates/scale",
                parameters(maximum=2**80),
                "parameters.0.maximum",
            ),
            (
                platform.operation.post,
                "/api/v1/templates",
                {
                    "slug": "t",
                    "name": "t",
                    "command_template": "echo {{x}}",
                    "parameters": [{"name": "x", "type": "string", "enum": [2**80]}],
                },
                "parameters.0.enum.0",
            ),
            (
                platform.operation.post,
                "/api/v1/templates",
                {
                    "slug": "h",
                    "name": "h",
                    "operation_type": "http",
                    "http": http | {"body": {"id": 2**64}},
                },
                "http.body.id",
            ),
            (
                platform.datasource.post,
                "/api/v1/datasources",
                {
                    "slug": "d",
                    "name": "d",
                    "source_type": "http",
                    "endpoint_url": "https://a.b/",
                    "method": "POST",
                    "body": 2**63,
                },
                "body",
            ),
            (
                platform.datasource.post,
                "/api/v1/datasources",
                {
                    "slug": "d",
                    "name": "d",
                    "source_type": "http",
                    "endpoint_url": "https://a.b/",
                    "method": "POST",
                    "body": {"a": [1, -(2**63) - 1]},
                },
                "body.a.1",
            ),
        ]
        for send, path, body, field in refusals:
            refused = await send(path, json=body, headers=ADMIN)
            assert refused.status_code == 422, (field, refused.text)
            assert [error["field"] for error in refused.json()["errors"]] == [field], refused.text

        # At the limits, kept exactly on either backend, and a panel's default is submitted.
        exact = await platform.panel.post(
            "/api/v1/panels",
            json=panel(
                integer | {"default": 2**53, "min_value": -(2**53), "max_value": 2**53},
                ratio | {"default": -(2**53)},
                dry | {"default": False},
            ),
            headers=ADMIN,
        )
        assert exact.status_code == 201, exact.text
        kept = await platform.panel.get("/api/v1/panels/p", headers=ADMIN)
        assert [field["default"] for field in kept.json()["fields"]] == [2**53, -(2**53), False]
        submitted = await platform.panel.post(
            "/api/v1/panels/p/submissions", json={"data": {}}, headers=ADMIN
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["data"] == {"replicas": 2**53, "ratio": -(2**53), "dry": False}
        # A value is any integer written as digits.
        direct = await platform.operation.post(
            "/api/v1/executions",
            json={"template": "scale", "parameters": {"replicas": 10**30, "ratio": 1, "dry": True}},
            headers=ADMIN,
        )
        assert direct.status_code == 202, direct.text
        assert direct.json()["parameters"]["replicas"] == 10**30
        changed = await platform.operation.patch(
            "/api/v1/templates/scale",
            json=parameters(default=2**53, enum=[2**53, -(2**53)], minimum=-(2**53)),
            headers=ADMIN,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["parameters"][0]["enum"] == [2**53, -(2**53)]
        body = {"id": 2**63 - 1, "ids": [-(2**63), 10**30 // 10**12]}
        for sent in (body, 2**63 - 1):
            source = await platform.datasource.post(
                "/api/v1/datasources",
                json={
                    "slug": f"d{len(str(sent))}",
                    "name": "d",
                    "source_type": "http",
                    "endpoint_url": "https://a.b/",
                    "method": "POST",
                    "body": sent,
                },
                headers=ADMIN,
            )
            assert source.status_code == 201, source.text
            read = await platform.datasource.get(
                f"/api/v1/datasources/{source.json()['id']}", headers=ADMIN
            )
            assert read.json()["body"] == sent


async def test_a_text_value_has_one_length_limit_on_every_intake(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """panel-svc took 10,000 characters where operation-svc takes 4,096: a longer value was
    a 202, then a submission rejected later. Now it is refused where it is entered."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        note = await template(
            platform,
            "note",
            "printenv IDP_PARAM_TOKEN {{text}} {{area}}",
            [{"name": "text"}, {"name": "area"}, {"name": "token", "type": "secret"}],
        )
        await panel_for(platform, note, area="textarea", token="secret")
        # Characters, not bytes: "é" is two bytes of UTF-8, "😀" four.
        longest = {
            "text": "é" * MAX_TEXT_LENGTH,
            "area": "😀" * MAX_TEXT_LENGTH,
            "token": "s" * 4096,
        }
        submitted = await platform.panel.post(
            "/api/v1/panels/note/submissions", json={"data": longest}, headers=ADMIN
        )
        assert submitted.status_code == 202, submitted.text
        assert (await execution_of(platform, submitted.json()["id"]))["status"] == "pending"
        direct = await platform.operation.post(
            "/api/v1/executions", json={"template": "note", "parameters": longest}, headers=ADMIN
        )
        assert direct.status_code == 202, direct.text
        for name in longest:
            too_long = longest | {name: longest[name] + "x"}
            form = await platform.panel.post(
                "/api/v1/panels/note/submissions", json={"data": too_long}, headers=ADMIN
            )
            assert_field_refused(form, f"data.{name}", "too_long")
            run = await platform.operation.post(
                "/api/v1/executions",
                json={"template": "note", "parameters": too_long},
                headers=ADMIN,
            )
            assert_field_refused(run, f"parameters.{name}", "too_long")
        roomier = await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "roomier",
                "title": "roomier",
                "operation_template": "note",
                "fields": [
                    {"name": "text", "label": "text", "max_length": MAX_TEXT_LENGTH + 1},
                    {"name": "area", "label": "area", "field_type": "textarea"},
                    {"name": "token", "label": "token", "field_type": "secret"},
                ],
            },
            headers=ADMIN,
        )
        assert_field_refused(roomier, "fields.0.max_length", "less_than_equal")


@pytest.mark.parametrize("integer", [True, False])
def test_a_number_past_the_digits_python_converts_is_refused_naming_the_limit(
    integer: bool,
) -> None:
    """Its error was Python's, telling the client to call sys.set_int_max_str_digits()."""
    with pytest.raises(ValueError, match="at most 4300 digits") as refused:
        as_number("1" * 4301, integer=integer)
    assert "sys." not in str(refused.value)


@pytest.mark.parametrize("negative_zero", [-0.0, "-0.0", "-0e3"])
def test_negative_zero_is_kept_as_zero(negative_zero: Any) -> None:
    """Kept as -0.0, it passed a minimum of 0 and became the argument "-0.0", which the run
    refused as a value starting with a dash, after the submission was accepted."""
    assert as_text(as_number(negative_zero, integer=False)) == "0.0"
    assert as_text(as_number(negative_zero, integer=True)) == "0"
