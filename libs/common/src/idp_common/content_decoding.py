"""Response bodies decoded (``Content-Encoding`` gzip or deflate) no further than a cap.

httpx inflates each chunk it reads in full: 64 KiB of gzip can become 64 MiB, and a 2 MiB
answer 2 GiB, before a caller counts a byte (measured: reading 1 MiB of such an answer took
130 MB). Any server an outbound call reaches may send one: a data source's upstream, a
webhook receiver, an HTTP template's URL. Here zlib is asked for no more bytes than are
still wanted; the input it has not read yet waits for the next call.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import httpx

_GZIP = zlib.MAX_WBITS | 16
_ZLIB_OR_GZIP = zlib.MAX_WBITS | 32
_RAW_DEFLATE = -zlib.MAX_WBITS
# Each coding listed costs an inflater (40 KB once it reads), and a header holds thousands:
# 93 KB of 3,000 nested gzips took 84 MB to read. curl and urllib3 undo no more than five.
MAX_CODINGS = 5


class _Inflater:
    def __init__(self, wbits: int, *, raw_on_failure: bool = False) -> None:
        self._inflate = zlib.decompressobj(wbits)
        self._raw_on_failure = raw_on_failure  # "deflate" is sent bare by some servers
        self.pending = b""

    def decode(self, data: bytes, limit: int) -> bytes:
        data = self.pending + data
        try:
            decoded = self._inflate.decompress(data, limit)
        except zlib.error as exc:
            if not self._raw_on_failure:
                raise httpx.DecodingError(f"the body does not decode: {exc}") from None
            self._inflate = zlib.decompressobj(_RAW_DEFLATE)
            self._raw_on_failure = False
            return self.decode(data, limit)
        self._raw_on_failure = False
        self.pending = self._inflate.unconsumed_tail
        return decoded


def _inflater(coding: str) -> _Inflater | None:
    if coding in ("gzip", "x-gzip"):
        return _Inflater(_GZIP)
    if coding == "deflate":
        return _Inflater(_ZLIB_OR_GZIP, raw_on_failure=True)
    return None  # identity, or a coding httpx would not decode either: the bytes as sent


class BoundedDecoder:
    """Decodes a body's raw chunks in the order its codings must be undone, each step
    giving at most ``limit`` bytes."""

    def __init__(self, content_encoding: str) -> None:
        codings = [part.strip().lower() for part in content_encoding.split(",")]
        if len(codings) > MAX_CODINGS:
            raise httpx.DecodingError(
                f"the body names {len(codings)} content codings, more than {MAX_CODINGS}"
            )
        steps = [_inflater(coding) for coding in reversed(codings)]
        self._steps: Sequence[_Inflater] = [step for step in steps if step is not None]

    @property
    def pending(self) -> bool:
        return any(step.pending for step in self._steps)

    def decode(self, data: bytes, limit: int) -> bytes:
        for step in self._steps:
            data = step.decode(data, limit)
        return data


async def read_capped(response: httpx.Response, cap_bytes: int) -> tuple[bytes, bool]:
    """The decoded body up to ``cap_bytes``, and whether it was longer (reading, and
    inflating, stop there)."""
    decoder = BoundedDecoder(response.headers.get("content-encoding", ""))
    body = bytearray()

    def add(chunk: bytes) -> bool:
        body.extend(decoder.decode(chunk, cap_bytes + 1 - len(body)))
        return len(body) > cap_bytes

    async for chunk in response.aiter_raw():
        if add(chunk):
            return bytes(body[:cap_bytes]), True
    while decoder.pending:
        if add(b""):
            return bytes(body[:cap_bytes]), True
    return bytes(body), False
