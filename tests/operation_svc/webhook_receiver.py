"""A webhook receiver for tests: a real HTTP server that records what it gets and answers
with the statuses it is told, one per request (then 200)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.harness import ServedApp


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    query: str


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answer: Response | None = None  # instead of "receiver says <status>"

    def app(self) -> ServedApp:
        async def hook(request: Request) -> Response:
            received = Received(await request.body(), dict(request.headers), request.url.query)
            self.received.append(received)
            status = self.statuses.pop(0) if self.statuses else 200
            return self.answer or PlainTextResponse(f"receiver says {status}", status_code=status)

        return ServedApp(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
