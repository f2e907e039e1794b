"""Asking datasource-svc for a dynamic field's options, as the user who is waiting (their
token or API key is forwarded, so tenancy, roles and rate limits apply there too)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from idp_common.errors import ProblemError
from idp_common.outbound import MAX_SOURCE_TIMEOUT_SECONDS

# Longer than any data source may take, so that a slow source is reported by datasource-svc
# (naming its timeout) rather than cut short here.
DATASOURCE_TIMEOUT = httpx.Timeout(MAX_SOURCE_TIMEOUT_SECONDS + 5, connect=5)


class DatasourceUnavailable(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "datasource-unavailable"


class DatasourceClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _send(
        self, method: str, path: str, credentials: Mapping[str, str], **options: Any
    ) -> httpx.Response:
        try:
            return await self.http.request(method, path, headers=dict(credentials), **options)
        except httpx.TimeoutException as exc:
            raise DatasourceUnavailable(
                f"datasource-svc at {self.http.base_url} did not answer in time "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise DatasourceUnavailable(
                f"datasource-svc could not be reached at {self.http.base_url} "
                f"({type(exc).__name__}); PANEL_DATASOURCE_API_URL says where it is"
            ) from exc

    async def resolve(
        self, source_id: uuid.UUID, values: Mapping[str, Any], credentials: Mapping[str, str]
    ) -> dict[str, Any]:
        response = await self._send(
            "POST",
            f"/api/v1/datasources/{source_id}/resolve",
            credentials,
            json={"values": dict(values)},
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            raise DatasourceUnavailable(f"the field's data source {source_id} does not exist")
        if response.is_error:
            try:
                detail = response.json()["detail"]
            except (ValueError, KeyError, TypeError):  # not a problem+json answer
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
            raise DatasourceUnavailable(f"the field's data source failed: {detail}")
        result: dict[str, Any] = response.json()
        return result

    async def find(
        self, reference: uuid.UUID | str, credentials: Mapping[str, str]
    ) -> uuid.UUID | None:
        """The id of the caller's tenant's data source named by ``reference`` (its id or
        slug), or None when the tenant has none of that name."""
        response = await self._send("GET", f"/api/v1/datasources/{reference}", credentials)
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.is_error:
            raise DatasourceUnavailable(
                f"datasource-svc refused to show data source {reference}: {response.status_code}"
            )
        return uuid.UUID(response.json()["id"])


class OptionsLookup:
    """The options of dynamic fields for one request, asked once per source and values."""

    def __init__(self, client: DatasourceClient, credentials: Mapping[str, str]) -> None:
        self.client = client
        self.credentials = credentials

    async def values(self, source_id: uuid.UUID, dependent: Mapping[str, Any]) -> set[str]:
        result = await self.client.resolve(source_id, dependent, self.credentials)
        return {option["value"] for option in result["options"]}
