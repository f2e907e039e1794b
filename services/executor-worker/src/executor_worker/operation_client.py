"""The worker's calls to operation-svc: claims before running, heartbeats while running.

Over aiohttp rather than httpx: a claim is on the path from a job's receipt to its spawn,
and httpx spent 0.73 ms of CPU per call where aiohttp spends 0.17 ms (a small JSON call to
a local server, measured here). The caller's trace context travels in the headers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from opentelemetry import propagate

from idp_common.auth import mint_token
from idp_common.coalescing import Coalescer
from idp_common.settings import AuthSettings

logger = logging.getLogger(__name__)
MINTED_TOKEN_TTL_SECONDS = 300
MAX_CLAIMS_PER_CALL = 100
CLAIM_RETRY_SECONDS = 60.0
CLAIM_RETRY_MAX_DELAY_SECONDS = 2.0


def _refused(error: Exception) -> bool:
    """operation-svc answered and refused the call (4xx): it recorded nothing."""
    return isinstance(error, aiohttp.ClientResponseError) and error.status < 500


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    stop: set[uuid.UUID]
    ended: set[uuid.UUID]


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
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: ServiceToken, worker_id: str
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.worker_id = worker_id
        self._claims = Coalescer(self._claim_batch, max_items=MAX_CLAIMS_PER_CALL)

    async def claim(self, execution_id: uuid.UUID) -> bool:
        """True when this worker now holds the execution; False when someone else did or
        it is finished or unknown. Other failures raise, so the job is retried later.
        Claims made while one is in flight share the next call."""
        return await self._claims.submit(execution_id)

    async def _claim_batch(self, execution_ids: list[uuid.UUID]) -> list[bool]:
        try:
            body = await self._post("/api/v1/workers/claims", execution_ids)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if _refused(exc):
                raise
            body = await self._claim_again(execution_ids, exc)
        claimed = {uuid.UUID(value) for value in body["claimed"]}
        for execution_id in set(execution_ids) - claimed:
            logger.info(
                "execution %s was not claimable (already claimed or finished)", execution_id
            )
        # A job delivered twice can reach one call twice: only its first copy may run.
        granted: list[bool] = []
        for execution_id in execution_ids:
            granted.append(execution_id in claimed)
            claimed.discard(execution_id)
        return granted

    async def _claim_again(self, execution_ids: list[uuid.UUID], error: Exception) -> Any:
        """The claim may have been recorded with its answer lost (operation-svc stalled past
        this client's timeout, or stopped after its commit): asked again as the claimer that
        runs none of them, rather than leaving them claimed and never run (then lost). Given
        up after CLAIM_RETRY_SECONDS: the job comes back, and is dropped if claimed."""
        give_up_at = time.monotonic() + CLAIM_RETRY_SECONDS
        delay = 0.25
        while True:
            logger.warning("claim of %s unanswered (%r); asking again", execution_ids, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, CLAIM_RETRY_MAX_DELAY_SECONDS)
            try:
                return await self._post("/api/v1/workers/claims", execution_ids, again=True)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if _refused(exc) or time.monotonic() + delay > give_up_at:
                    raise
                error = exc

    async def heartbeat(self, execution_ids: list[uuid.UUID]) -> HeartbeatAnswer:
        """Keep these executions alive; answers the ones to stop and the ones that ended."""
        body = await self._post("/api/v1/workers/heartbeat", execution_ids)
        return HeartbeatAnswer(
            stop={uuid.UUID(value) for value in body["stop"]},
            ended={uuid.UUID(value) for value in body["ended"]},
        )

    async def ping(self) -> None:
        async with self.http.get(f"{self.base_url}/healthz") as response:
            response.raise_for_status()

    async def _post(self, path: str, execution_ids: list[uuid.UUID], **extra: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token.value()}"}
        propagate.inject(headers)
        ids = [str(i) for i in execution_ids]
        body = {"worker_id": self.worker_id, "execution_ids": ids, **extra}
        async with self.http.post(f"{self.base_url}{path}", json=body, headers=headers) as response:
            response.raise_for_status()
            return await response.json()
