"""panel-svc as a schedule's target: a panel schedule submits its form through panel-svc's
own intake (``POST /api/v1/panels/{id}/submissions``), so the panel's validation, access
rules, approval policy and rate limit apply to it as to a person's submission.

A slot's submission is asked for as the schedule's owner (a JWT minted for the subject,
tenant, roles and groups recorded on the schedule, signed like the platform's other service
identities) with the Idempotency-Key ``schedule:<id>:<slot>``: two replicas that reach one
slot, or a turn rolled back after its call, get the same submission, so a slot makes one
submission at most. The answer decides the slot: 202 fired; 401/403/404/409/422 refused
(the schedule is paused with panel-svc's reason); 429, 5xx or no answer leave the slot to
the next pass, so an outage of panel-svc loses no slot (past the misfire grace, the
schedule's misfire policy decides it).

**Why not the ``panel.submission.requested`` event**: an event has no answer. A refused
event only reaches a dead-letter queue, so the scheduler could neither pause a schedule
whose owner lost access nor record what became of the slot."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote

import httpx

from idp_common.auth import Principal, Role, mint_token
from idp_common.errors import ProblemError
from idp_common.settings import AuthSettings

logger = logging.getLogger(__name__)
OWNER_TOKEN_SECONDS = 300
# A slot's call waits no longer (the slot is tried again at the next pass).
PANEL_TIMEOUT_SECONDS = 10
REFUSALS = frozenset({401, 403, 404, 409, 422})


class PanelsUnavailable(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "panel-svc-unavailable"


@dataclass(frozen=True, slots=True)
class PanelTarget:
    """A panel as the caller sees it at panel-svc."""

    id: uuid.UUID
    slug: str
    fields: frozenset[str]
    secret_fields: frozenset[str]
    allowed_roles: tuple[str, ...]
    allowed_groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PanelFire:
    """What submitting one slot of a panel schedule needs (read from the schedule, so the
    call needs no database)."""

    schedule_id: uuid.UUID
    slot: datetime
    panel_id: uuid.UUID
    data: dict[str, Any]
    owner: Principal

    @property
    def idempotency_key(self) -> str:
        return f"schedule:{self.schedule_id}:{self.slot.isoformat()}"


@dataclass(frozen=True, slots=True)
class Submitted:
    submission_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    reason: str


PanelAnswer = Submitted | Refused | Unreachable


def problem_reason(response: httpx.Response) -> str:
    """A problem's detail and each field error, as one line."""
    try:
        problem = response.json()
    except ValueError:
        return f"panel-svc answered {response.status_code}"
    if not isinstance(problem, dict):
        return f"panel-svc answered {response.status_code}"
    reasons = [str(problem.get("detail") or problem.get("title") or response.status_code)]
    reasons += [
        f"{error.get('field')}: {error.get('message')}"
        for error in problem.get("errors") or []
        if isinstance(error, dict)
    ]
    return "; ".join(reasons)


class PanelClient:
    """panel-svc's panels (read as the waiting caller) and submissions (as an owner)."""

    def __init__(self, http: httpx.AsyncClient, auth: AuthSettings) -> None:
        self.http = http
        self.auth = auth

    @property
    def acts_as_owners(self) -> bool:
        """Whether owners' tokens can be made here: minted with AUTH_JWT_SECRET, they are
        accepted only where AUTH_JWT_ALGORITHMS (shared by every service) includes HS256."""
        return "HS256" in self.auth.jwt_algorithms

    def owner_credentials(self, owner: Principal) -> dict[str, str]:
        token = mint_token(
            self.auth,
            subject=owner.subject,
            tenant=owner.tenant,
            roles=cast(list[Role], sorted(owner.roles)),
            groups=owner.groups,
            ttl_seconds=OWNER_TOKEN_SECONDS,
        )
        return {"Authorization": f"Bearer {token}"}

    async def find(self, reference: str, credentials: Mapping[str, str]) -> PanelTarget | None:
        """The panel ``reference`` (slug or id) names for whoever ``credentials`` are, or
        None when their tenant has none."""
        try:
            response = await self.http.get(
                f"/api/v1/panels/{quote(reference, safe='')}", headers=dict(credentials)
            )
        except httpx.HTTPError as exc:
            raise PanelsUnavailable(
                f"panel-svc could not be reached at {self.http.base_url} to check panel "
                f"({type(exc).__name__}); OPERATION_PANEL_API_URL says where it is"
            ) from exc
        if response.status_code in (httpx.codes.NOT_FOUND, httpx.codes.UNPROCESSABLE_ENTITY):
            return None  # 422: a reference that can name no panel
        if response.is_error:
            raise PanelsUnavailable(
                f"panel-svc refused to show panel {reference!r}: {problem_reason(response)}"
            )
        try:
            panel = response.json()
            return PanelTarget(
                id=uuid.UUID(panel["id"]),
                slug=panel["slug"],
                fields=frozenset(field["name"] for field in panel["fields"]),
                secret_fields=frozenset(
                    field["name"] for field in panel["fields"] if field["field_type"] == "secret"
                ),
                allowed_roles=tuple(panel["allowed_roles"]),
                allowed_groups=tuple(panel["allowed_groups"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PanelsUnavailable(
                f"panel-svc answered something other than a panel for {reference!r}"
            ) from exc

    async def submit(self, fire: PanelFire) -> PanelAnswer:
        """Submit one slot's form as the owner; the same slot always gets one submission."""
        headers = self.owner_credentials(fire.owner) | {"Idempotency-Key": fire.idempotency_key}
        try:
            response = await self.http.post(
                f"/api/v1/panels/{fire.panel_id}/submissions",
                json={"data": fire.data},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return Unreachable(f"panel-svc could not be reached ({type(exc).__name__}: {exc})")
        if response.status_code == httpx.codes.ACCEPTED:
            try:
                return Submitted(uuid.UUID(response.json()["id"]))
            except (ValueError, KeyError, TypeError):
                return Unreachable("panel-svc accepted the submission without its id")
        reason = problem_reason(response)
        if response.status_code in REFUSALS:
            return Refused(f"panel-svc refused the submission ({response.status_code}): {reason}")
        return Unreachable(f"panel-svc answered {response.status_code}: {reason}")
