"""What the OpenAPI documents offer is what the APIs take: a client generated from them
sends nothing the API then refuses for a reason the document could have said.

- A partial update (``PATCH``) offers ``null`` only for the attributes it clears; anywhere
  else ``null`` is a 422 naming the attribute.
- A URL the platform calls is documented as an absolute http(s) URL.
- ``POST /api/v1/events`` documents the structured CloudEvent it takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from datasource_svc.sources.schemas import DataSourceUpdate
from idp_common.schemas import PatchModel
from operation_svc.schedules.schemas import ScheduleUpdate
from operation_svc.templates.schemas import TemplateUpdate
from operation_svc.webhooks.schemas import WebhookUpdate
from panel_svc.panels.schemas import PanelUpdate
from tests.factories import template
from tests.harness import LocalSQSServer, Platform, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))
NULL = {"type": "null"}
URL_PATTERN = r"^[Hh][Tt][Tt][Pp]([Ss])?://[^/?#\s]+\S*$"


@pytest.fixture(scope="module")
async def platform(
    tmp_path_factory: pytest.TempPathFactory, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite",
        tmp_path_factory.mktemp("openapi"),
        sqs_server,
        with_worker=False,
        with_datasource=True,
    ) as running:
        yield running


def client_of(platform: Platform, service: str) -> httpx.AsyncClient:
    client = {
        "operation": platform.operation,
        "panel": platform.panel,
        "datasource": platform.datasource,
    }[service]
    assert client is not None
    return client


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


def resolved(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def request_body(openapi: dict[str, Any], method: str, path: str, media: str) -> dict[str, Any]:
    content = openapi["paths"][path][method]["requestBody"]["content"][media]
    return resolved(openapi, content["schema"])


def admits_null(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` lets ``null`` through: a null branch, or no type at all (``Any``)."""
    typed = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"} & schema.keys()
    return NULL in schema.get("anyOf", []) or schema.get("type") == "null" or not typed


async def say_template(platform: Platform) -> str:
    """The id of the template ``say``, made the first time it is asked for."""
    found = await platform.operation.get("/api/v1/templates/say", headers=ADMIN)
    if found.status_code == 200:
        return str(found.json()["id"])
    return str((await template(platform, "say", "echo {{m}}", [{"name": "m"}]))["id"])


# Each kind of object but templates: the service that keeps it, where it is created, a body.
NEW_OBJECTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webhook": (
        "operation",
        "/api/v1/webhooks",
        {"url": "https://hooks.example.com/in", "event_types": ["panel.submission.updated"]},
    ),
    "schedule": (
        "operation",
        "/api/v1/schedules",
        {"template": "say", "parameters": {"m": "x"}, "cron": "0 3 * * *", "is_paused": True},
    ),
    "panel": (
        "panel",
        "/api/v1/panels",
        {
            "slug": "say",
            "title": "Say",
            "operation_template": "say",
            "fields": [{"name": "m", "label": "M"}],
        },
    ),
    "datasource": (
        "datasource",
        "/api/v1/datasources",
        {
            "slug": "regions",
            "name": "Regions",
            "source_type": "static",
            "options": [{"value": "eu", "label": "Europe"}],
        },
    ),
}


async def new_object(platform: Platform, kind: str) -> str:
    """The id of an object of ``kind``, the first of its kind in the tenant."""
    template_id = await say_template(platform)  # what schedules and panels run
    if kind == "template":
        return template_id
    service, path, body = NEW_OBJECTS[kind]
    response = await client_of(platform, service).post(path, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# Each partial update: its model, the service, the path it is sent to, the kind of object.
UPDATES = [
    (TemplateUpdate, "operation", "/api/v1/templates/{template_id}", "template"),
    (WebhookUpdate, "operation", "/api/v1/webhooks/{webhook_id}", "webhook"),
    (ScheduleUpdate, "operation", "/api/v1/schedules/{schedule_id}", "schedule"),
    (PanelUpdate, "panel", "/api/v1/panels/{panel_id}", "panel"),
    (DataSourceUpdate, "datasource", "/api/v1/datasources/{source_id}", "datasource"),
]


def test_every_partial_update_is_listed_here() -> None:
    """A new partial update model is checked by the tests below once it is added above."""
    assert {model for model, *_ in UPDATES} == set(PatchModel.__subclasses__())


@pytest.mark.parametrize(("model", "service", "path", "kind"), UPDATES)
async def test_a_partial_update_offers_null_only_where_null_clears(
    platform: Platform, model: type[PatchModel], service: str, path: str, kind: str
) -> None:
    """The document offers null for the clearable attributes (and those that take any JSON,
    such as a data source's ``body``) and for no other, and no defaults (an attribute left
    out keeps its value); each other one sent as null is a 422 naming it, and nothing is
    changed."""
    client = client_of(platform, service)
    openapi = await document(client)
    properties = request_body(openapi, "patch", path, "application/json")["properties"]
    offered = {name for name, schema in properties.items() if admits_null(schema)}
    untyped = {name for name, schema in properties.items() if schema.keys() <= {"title"}}
    assert offered == set(model.clearable) | untyped
    assert not any("default" in schema for schema in properties.values())  # omitted: kept

    object_id = await new_object(platform, kind)
    url = path.replace(path[path.index("{") :], object_id)
    before = (await client.get(url, headers=ADMIN)).json()
    for name in sorted(properties.keys() - offered):
        refused = await client.patch(url, json={name: None}, headers=ADMIN)
        assert refused.status_code == 422, (name, refused.text)
        assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
            (name, "not_nullable")
        ], name
    after = (await client.get(url, headers=ADMIN)).json()
    assert after == before


@pytest.mark.parametrize(
    ("service", "method", "path", "url_of"),
    [
        ("operation", "post", "/api/v1/webhooks", lambda body: body["properties"]["url"]),
        ("operation", "patch", "/api/v1/webhooks/{webhook_id}", lambda b: b["properties"]["url"]),
        ("datasource", "post", "/api/v1/datasources", lambda b: b["properties"]["endpoint_url"]),
    ],
)
async def test_urls_the_platform_calls_are_documented_as_http_urls(
    platform: Platform, service: str, method: str, path: str, url_of: Any
) -> None:
    openapi = await document(client_of(platform, service))
    url = url_of(request_body(openapi, method, path, "application/json"))
    branches = url.get("anyOf", [url])
    assert [branch.get("pattern") for branch in branches if branch != NULL] == [URL_PATTERN]


async def test_an_http_templates_url_is_documented_as_an_http_url(platform: Platform) -> None:
    openapi = await document(platform.operation)
    body = request_body(openapi, "post", "/api/v1/templates", "application/json")
    http = resolved(openapi, next(b for b in body["properties"]["http"]["anyOf"] if b != NULL))
    assert http["properties"]["url"]["pattern"] == URL_PATTERN


@pytest.mark.parametrize("service", ["operation", "panel"])
async def test_the_events_endpoint_documents_the_structured_cloudevent(
    platform: Platform, service: str
) -> None:
    """Its required attributes are those without which the event is a 422; an event that
    has them all reaches the service's own checks (here: a type it does not take)."""
    client = client_of(platform, service)
    openapi = await document(client)
    event = request_body(openapi, "post", "/api/v1/events", "application/cloudevents+json")
    assert event["required"] == ["specversion", "id", "source", "type", "tenant", "data"]
    assert event["properties"]["specversion"] == {"const": "1.0"}
    complete = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:test",
        "type": "com.example.unknown",
        "tenant": "acme",
        "data": {},
    }
    headers = ADMIN | {"Content-Type": "application/cloudevents+json"}
    for attribute in event["required"]:
        incomplete = {k: v for k, v in complete.items() if k != attribute}
        refused = await client.post("/api/v1/events", json=incomplete, headers=headers)
        assert refused.status_code == 422, (attribute, refused.text)
    reached = await client.post("/api/v1/events", json=complete, headers=headers)
    assert reached.status_code == 422, reached.text
    assert "com.example.unknown" in reached.json()["detail"], reached.text
