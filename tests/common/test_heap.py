"""A service's own process settles its heap once started (``idp_common.heap``): what
starting built is frozen out of later collections, what it left as garbage is freed first,
and the youngest generation is collected less often. Served in a process of its own, as
`make run` serves each service: never in the test's process, whose heap it would freeze."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from idp_common.heap import YOUNG_COLLECTION_THRESHOLD
from tests.harness import eventually, free_port

SERVICE = """
import gc, sys, weakref
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from idp_common.cli import service_server

gc.disable()  # only the settling may collect what follows


class Node:
    pass


garbage = Node()
garbage.cycle = garbage  # freed by a collection only
left_by_startup = weakref.ref(garbage)
del garbage


async def heap(request):
    return JSONResponse(
        {
            "frozen": gc.get_freeze_count(),
            "young_threshold": gc.get_threshold()[0],
            "startup_garbage_freed": left_by_startup() is None,
        }
    )


service_server(Starlette(routes=[Route("/heap", heap)]), "127.0.0.1", int(sys.argv[1])).run()
"""


async def test_a_started_service_has_frozen_its_startup_objects_and_freed_its_garbage() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVICE, str(port))
    try:
        async with aiohttp.ClientSession() as client:

            async def heap() -> dict[str, Any] | None:
                try:
                    async with client.get(f"http://127.0.0.1:{port}/heap") as response:
                        return dict(await response.json())
                except aiohttp.ClientConnectionError:
                    return None

            state = await eventually(heap, timeout=30)
    finally:
        process.terminate()
        await process.wait()
    assert state["startup_garbage_freed"] is True
    assert state["frozen"] > 10_000
    assert state["young_threshold"] == YOUNG_COLLECTION_THRESHOLD
