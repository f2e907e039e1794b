"""Tracing (OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set), JSON logs and Prometheus."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from pythonjsonlogger.json import JsonFormatter

from idp_common.health import readiness
from idp_common.http_metrics import HttpMetrics
from idp_common.request_context import request_id_var, tenant_var, trace_id_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

NOT_TRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# /metrics answers while /readyz fails (a database or broker unreachable): without this, such
# a service was up to Prometheus and no alert said it could not serve.
READY = Gauge(
    "idp_ready",
    "1 while a readiness check of /readyz passes, 0 while it fails (checked at each scrape).",
    ["check"],
)
# False only when this module installed a provider with nowhere to send spans.
_spans_leave_process = True


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span()
        context = span.get_span_context()
        record.service = self.service
        record.trace_id = trace_id_of(span)
        record.span_id = format(context.span_id, "016x") if context.is_valid else None
        record.request_id = request_id_var.get()
        record.tenant = tenant_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "aiobotocore", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def configure_tracing(service: str) -> None:
    """Install the tracer provider once per process (tests may have installed their own).

    With nowhere to send spans, the traces this process starts are not sampled: their spans
    still carry trace and span ids (logs, audit rows, X-Trace-Id and the messages' trace
    context keep them) but record nothing, which cost ~0.05 ms of CPU per span for nobody.
    A caller's sampled trace stays sampled on its way through, for the services after
    this one that export."""
    global _spans_leave_process
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    _spans_leave_process = bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=None if _spans_leave_process else ParentBased(root=ALWAYS_OFF),
    )
    if _spans_leave_process:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()


def instrument_redis() -> None:
    """Spans per Redis command; called where a Redis client is built, as only a configured
    Redis needs it: importing redis costs ~7 MB of RSS (measured), for nothing in the
    embedded default."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()  # one per process: it instruments once
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _not_traced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in NOT_TRACED_PATHS


def fastapi_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry instrumentation: one SERVER span per request, named by
    its route template. It knows the route from its router, where the contrib
    instrumentation matched every request against the routes again (measured: ~0.1 of the
    ~0.5 ms of CPU a trivial request costs). No sub-spans per dependency, endpoint or
    serialization, and no OpenTelemetry HTTP metrics or logs: Prometheus and the JSON logs
    carry those."""
    return {"metrics": False, "logs": False, "operation_spans": False, "exclude": _not_traced}


def instrument_app(app: FastAPI) -> None:
    """HTTP metrics by route template (``idp_common.http_metrics``) on /metrics, with the
    process-wide domain metrics (spans: ``fastapi_telemetry``). Each app's HTTP metrics live
    in a registry of its own: several apps can share a process in tests."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(REGISTRY)
    app.add_middleware(HttpMetrics(registry, excluded=NOT_TRACED_PATHS).middleware)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        report = await readiness(request.app)
        READY.clear()  # only this app's checks (tests serve several apps in one process)
        for check, result in report.items():
            READY.labels(check).set(result == "ok")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def instrument_engines(engines: Iterable[AsyncEngine]) -> None:
    """Spans per statement, when spans leave the process: recording one costs about as much
    CPU as the statement itself on SQLite (measured ~0.4 ms), for nothing when no exporter
    is configured. The instrumentor instruments once per process (a second call only logs
    a warning), so all of a database's engines are given to it at once.

    Imported here, by the services that have a database: the console and the worker have
    none, and importing SQLAlchemy would cost each ~17 MB of RSS (measured)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()  # one per process: it instruments once
    if _spans_leave_process and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(engines=[engine.sync_engine for engine in engines])
