"""Which service owns an ``/api/v1`` path: decided by its first segment.

panel-svc and operation-svc both serve ``/api/v1/audit`` (each its own changes) and
``/api/v1/events`` (each its own inbound events). Through the console ``/api/v1/audit`` is
operation-svc's (templates, runs, keys, secrets: most of what people audit), and the others'
are ``/api/v1/panel-audit`` and ``/api/v1/datasource-audit``. ``/api/v1/events`` is not
proxied: producers are services that post to the owning service itself, not browsers.
"""

from __future__ import annotations

from typing import NamedTuple

OWNERS = {
    "panels": "panel",
    "submissions": "panel",
    "auth": "panel",  # /auth/whoami: every service answers it alike
    "templates": "operation",
    "executions": "operation",
    "approvals": "operation",
    "schedules": "operation",
    "webhooks": "operation",
    "queues": "operation",
    "secrets": "operation",
    "api-keys": "operation",
    "audit": "operation",
    "datasources": "datasource",
}
# A console path segment → (service, the segment that service knows).
RENAMED = {
    "panel-audit": ("panel", "audit"),
    "datasource-audit": ("datasource", "audit"),
}


class Target(NamedTuple):
    service: str
    path: str


def route(path: str) -> Target | None:
    """The service and its path for ``path`` (what follows ``/api/v1/``, decoded), or None.
    A ``.`` or ``..`` segment is refused: the upstream URL would resolve it and reach what
    no prefix gives (``panels/../../../metrics`` is ``/metrics``)."""
    if {".", ".."} & set(path.split("/")):
        return None
    first, slash, rest = path.partition("/")
    if first in RENAMED:
        service, renamed = RENAMED[first]
        return Target(service, f"/api/v1/{renamed}{slash}{rest}")
    if first in OWNERS:
        return Target(OWNERS[first], f"/api/v1/{path}")
    return None
