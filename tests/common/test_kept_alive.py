"""A service keeps an idle keep-alive connection open longer than its clients and proxies
keep theirs (``idp_common.cli.KEEP_ALIVE_SECONDS``), so a client that reuses one is answered
on it instead of racing the server's close: here after 6 s idle, past uvicorn's default 5 s."""

from __future__ import annotations

import asyncio
import re

from fastapi import FastAPI

from tests.harness import ServedApp


async def ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert length is not None
    await reader.readexactly(int(length.group(1)))
    return head.split(b"\r\n", 1)[0]


async def test_a_connection_left_idle_for_six_seconds_is_still_served() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def pong() -> dict[str, bool]:
        return {"ok": True}

    async with ServedApp(app) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            assert await ping(reader, writer) == b"HTTP/1.1 200 OK"
            await asyncio.sleep(6)
            assert await ping(reader, writer) == b"HTTP/1.1 200 OK"
        finally:
            writer.close()
