"""Liveness and readiness: /healthz answers while the process runs; /readyz checks its
dependencies (database, broker, cache) and answers 503 naming the one that failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _run(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


async def readiness(app: FastAPI) -> dict[str, str]:
    """Each readiness check of ``app`` and its result: "ok", or why it failed."""
    checks: dict[str, ReadinessCheck] = getattr(app.state, "readiness_checks", {})
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    report = await readiness(request.app)
    ready = bool(report) and all(result == "ok" for result in report.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": report},
        status_code=200 if ready else 503,
    )
