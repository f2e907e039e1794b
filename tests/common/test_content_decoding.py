"""Bodies that inflate past any cap (decompression bombs) are read no further than the cap,
through the guarded client, from a real local server; ordinary encoded bodies decode."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp_common.content_decoding import read_capped
from idp_common.outbound import guarded_client
from tests.harness import ServedApp

MiB = 1024 * 1024


def deflated(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


def gzip_bomb(mebibytes: int, fill: bytes = b"\0") -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = fill * MiB
    return b"".join(compressor.compress(chunk) for _ in range(mebibytes)) + compressor.flush()


def nested_gzip(data: bytes, times: int) -> bytes:
    for _ in range(times):
        data = gzip.compress(data)
    return data


BOMB = gzip_bomb(64)  # 64 MiB of zeros in 64 KiB
TEXT = os.urandom(300_000)  # incompressible: several raw chunks on the wire
BODIES: dict[str, tuple[str, bytes]] = {
    "gzip-bomb": ("gzip", BOMB),
    "deflate-bomb": ("deflate", deflated(b"\0" * 64 * MiB, zlib.MAX_WBITS)),
    "raw-deflate-bomb": ("deflate", deflated(b"\0" * 64 * MiB, -zlib.MAX_WBITS)),
    "bomb-in-a-bomb": ("gzip, deflate", deflated(BOMB, zlib.MAX_WBITS)),
    "gzip": ("gzip", gzip.compress(TEXT)),
    "x-gzip": ("X-GZIP", gzip.compress(TEXT)),
    "deflate": ("deflate", deflated(TEXT, zlib.MAX_WBITS)),
    "raw-deflate": ("deflate", deflated(TEXT, -zlib.MAX_WBITS)),
    "twice": ("gzip, gzip", gzip.compress(gzip.compress(TEXT))),
    "five-times": (", ".join(["gzip"] * 5), nested_gzip(TEXT, 5)),
    "six-times": (", ".join(["gzip"] * 6), nested_gzip(TEXT, 6)),
    "identity": ("identity", TEXT),
    "unknown": ("br", TEXT),  # as httpx: a coding it cannot undo is passed on as sent
    "not-gzip": ("gzip", b"plain text said to be gzip"),
    "bad-block": ("gzip", gzip.compress(b"")[:10] + b"\xff" * 100),
}


async def encoded(request: Request) -> Response:
    coding, body = BODIES[request.path_params["name"]]
    return Response(body, headers={"content-encoding": coding})


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[str]:
    async with ServedApp(Starlette(routes=[Route("/{name}", encoded)])) as served:
        yield served.url


async def read(url: str, cap: int) -> tuple[bytes, bool]:
    async with (
        guarded_client(["127.0.0.1"], 30, "ALLOWED") as client,
        client.stream("GET", url) as response,
    ):
        return await read_capped(response, cap)


@pytest.mark.parametrize(
    "name", ["gzip-bomb", "deflate-bomb", "raw-deflate-bomb", "bomb-in-a-bomb"]
)
async def test_a_bomb_is_inflated_no_further_than_the_cap(server: str, name: str) -> None:
    tracemalloc.start()
    try:
        body, longer = await read(f"{server}/{name}", MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (body, longer) == (b"\0" * MiB, True)
    assert peak < 8 * MiB, f"reading a 1 MiB cap took {peak / MiB:.0f} MiB"


@pytest.mark.parametrize(
    "name",
    ["gzip", "x-gzip", "deflate", "raw-deflate", "twice", "five-times", "identity", "unknown"],
)
async def test_an_encoded_body_decodes_whole_under_the_cap(server: str, name: str) -> None:
    sent = TEXT if name != "unknown" else BODIES[name][1]
    assert await read(f"{server}/{name}", len(TEXT)) == (sent, False)
    assert await read(f"{server}/{name}", len(TEXT) - 1) == (sent[:-1], True)


@pytest.mark.parametrize("name", ["not-gzip", "bad-block"])
async def test_a_body_that_does_not_decode_is_a_decoding_error(server: str, name: str) -> None:
    with pytest.raises(httpx.DecodingError, match="does not decode"):
        await read(f"{server}/{name}", MiB)


async def test_a_body_naming_more_codings_than_undone_is_a_decoding_error(server: str) -> None:
    """Each coding costs an inflater: thousands of them in one header took 84 MB to read."""
    with pytest.raises(httpx.DecodingError, match="6 content codings, more than 5"):
        await read(f"{server}/six-times", MiB)
