"""Running one ``http`` operation under the outbound rules (no internal addresses unless
allowlisted, redirects re-checked, response capped): the status line and the body become
the execution's output."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection
from typing import Any

import httpx

from executor_worker.runner import EXCERPT_BYTES, LineSink, OutputLimits, RunResult, forward_body
from idp_common.content_decoding import read_capped
from idp_common.events import HttpCall
from idp_common.outbound import OutboundRefused, guarded_client


async def _call(
    call: HttpCall, allowed_hosts: Collection[str], timeout_seconds: float, cap_bytes: int
) -> tuple[httpx.Response, bytes, bool]:
    async with guarded_client(
        allowed_hosts, timeout_seconds, "WORKER_OUTBOUND_ALLOWED_HOSTS"
    ) as client:
        body: dict[str, Any] = {} if call.body is None else {"json": call.body}
        request = client.build_request(call.method, call.url, headers=call.headers, **body)
        response = await client.send(request, stream=True)
        try:
            content, truncated = await read_capped(response, cap_bytes)
        finally:
            await response.aclose()
        return response, content, truncated


async def run_http(
    call: HttpCall,
    *,
    allowed_hosts: Collection[str],
    timeout_seconds: float,
    limits: OutputLimits,
    sink: LineSink,
    stop: asyncio.Event,
) -> RunResult:
    started = time.monotonic()
    attempt = asyncio.ensure_future(_call(call, allowed_hosts, timeout_seconds, limits.cap_bytes))
    stop_requested = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait(
        {attempt, stop_requested}, timeout=timeout_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    stop_requested.cancel()
    if attempt not in done:
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await attempt
        cancelled = stop_requested in done
        return RunResult(
            "cancelled" if cancelled else "timed_out",
            None,
            time.monotonic() - started,
            "",
            0,
            False,
            "stopped on request" if cancelled else f"timed out after {timeout_seconds:g}s",
        )
    try:
        response, content, truncated = attempt.result()
    except OutboundRefused as exc:
        return RunResult.refused(f"outbound call refused: {exc}")
    except httpx.TimeoutException:
        return RunResult(
            "timed_out",
            None,
            time.monotonic() - started,
            "",
            0,
            False,
            f"timed out after {timeout_seconds:g}s",
        )
    # ValueError: a redirect to a host name the client refuses (idna's errors)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return RunResult.refused(f"HTTP call failed: {type(exc).__name__}: {exc}")
    await sink("system", [f"HTTP {response.status_code} {response.reason_phrase}"])
    cut = await forward_body(content, sink, limits)
    if truncated:
        await sink("system", [f"[response truncated after {limits.cap_bytes} bytes]"])
    return RunResult(
        "succeeded" if response.is_success else "failed",
        None,
        time.monotonic() - started,
        content[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
        len(content),
        truncated or cut,
        None if response.is_success else f"HTTP {response.status_code}",
    )
