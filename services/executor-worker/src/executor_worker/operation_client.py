"""The worker's calls to operation-svc: claiming an execution before running it."""

from __future__ import annotations

import logging
import time
import uuid

import httpx

from idp_common.auth import mint_token
from idp_common.settings import AuthSettings

logger = logging.getLogger(__name__)
MINTED_TOKEN_TTL_SECONDS = 300


class ServiceToken:
    """The worker's bearer token: configured, or (development only) minted and renewed."""

    def __init__(self, configured: str | None, auth: AuthSettings, worker_id: str) -> None:
        self._configured = configured
        self._auth = auth
        self._worker_id = worker_id
        self._minted: tuple[str, float] | None = None

    def value(self) -> str:
        if self._configured:
            return self._configured
        if self._minted is None or self._minted[1] - time.time() < 60:
            token = mint_token(
                self._auth,
                subject=f"worker:{self._worker_id}",
                tenant="*",
                roles=["service"],
                ttl_seconds=MINTED_TOKEN_TTL_SECONDS,
            )
            self._minted = (token, time.time() + MINTED_TOKEN_TTL_SECONDS)
        return self._minted[0]


class OperationClient:
    def __init__(self, http: httpx.AsyncClient, token: ServiceToken) -> None:
        self.http = http
        self.token = token

    async def claim(self, execution_id: uuid.UUID, worker_id: str) -> bool:
        """True when this worker now holds the execution; False when someone else did or
        it is finished or unknown. Other failures raise, so the job is retried later."""
        response = await self.http.post(
            f"/api/v1/executions/{execution_id}/claim",
            json={"worker_id": worker_id},
            headers={"Authorization": f"Bearer {self.token.value()}"},
        )
        if response.status_code == httpx.codes.OK:
            return True
        if response.status_code in (httpx.codes.CONFLICT, httpx.codes.NOT_FOUND):
            logger.info("execution %s not claimable: %s", execution_id, response.text[:200])
            return False
        response.raise_for_status()
        return False

    async def heartbeat(self, worker_id: str, execution_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Keep these executions alive; returns the ones this worker must stop."""
        response = await self.http.post(
            "/api/v1/workers/heartbeat",
            json={"worker_id": worker_id, "execution_ids": [str(i) for i in execution_ids]},
            headers={"Authorization": f"Bearer {self.token.value()}"},
        )
        response.raise_for_status()
        return [uuid.UUID(value) for value in response.json()["stop"]]

    async def ping(self) -> None:
        (await self.http.get("/healthz")).raise_for_status()
