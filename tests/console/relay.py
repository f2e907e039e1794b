"""A TCP relay between the console and operation-svc that can cut a log stream's
connection mid-way, as a dropped network would."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

STREAM_PATH = b"/logs/stream"


@dataclass
class StreamCutter:
    """Relays every connection to ``target_port``; once armed, the next connection that
    carries a log-stream request is cut ``after_seconds`` after that request."""

    target_port: int
    port: int = 0
    cut_after: float | None = None
    cuts: int = 0
    stream_requests: list[bytes] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, after_seconds: float) -> None:
        self.cut_after = after_seconds

    async def __aenter__(self) -> StreamCutter:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        ends = (writer, upstream_writer)

        def cut() -> None:
            self.cuts += 1
            for end in ends:
                end.transport.abort()

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, requests: bool
        ) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await source.read(65536):
                    if requests and STREAM_PATH in chunk:
                        self.stream_requests.append(chunk)
                        if self.cut_after is not None:
                            asyncio.get_running_loop().call_later(self.cut_after, cut)
                            self.cut_after = None
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        await asyncio.gather(
            pipe(reader, upstream_writer, requests=True),
            pipe(upstream_reader, writer, requests=False),
        )
