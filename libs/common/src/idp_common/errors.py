"""RFC 9457 problem+json errors: one base class, one set of handlers, one shape."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from idp_common.http_methods import allowed_methods
from idp_common.request_context import identifying_headers, request_id_var
from idp_common.schemas import error_location

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    field: str
    message: str
    code: str


class Problem(BaseModel):
    """An RFC 9457 problem, as every error of every service is answered."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[FieldProblem] | None = None


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` with every error answer documented as the problem it is: FastAPI's own
    422 schema replaced, and any other 4xx or 5xx answer described by ``4XX``/``5XX``."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas |= problem.pop("$defs", {}) | {"Problem": problem}
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid input", "content": content}
            responses.setdefault("4XX", {"description": "Refused", "content": content})
            responses.setdefault("5XX", {"description": "Unavailable", "content": content})
    return openapi


class ProblemError(Exception):
    """An expected failure reported to the client as problem+json."""

    status_code = 500
    title = "Internal Server Error"
    slug = "internal-error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers

    def summary(self) -> str:
        """One line: the status, the detail and each field's problem (for logs and dead
        letters, where there is no response body)."""
        fields = "; ".join(f"{error['field']}: {error['message']}" for error in self.errors or ())
        return f"{self.status_code} {self.detail}" + (f" ({fields})" if fields else "")


class Unauthorized(ProblemError):
    status_code, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str = "Missing or invalid credentials") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    status_code, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status_code, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status_code, title, slug = 409, "Conflict", "conflict"


class ValidationFailed(ProblemError):
    status_code, title, slug = 422, "Validation Failed", "validation-error"


class TooManyRequests(ProblemError):
    status_code, title, slug = 429, "Too Many Requests", "rate-limited"


class Unavailable(ProblemError):
    status_code, title, slug = 503, "Service Unavailable", "unavailable"


def field_error(field: str, message: str, code: str = "invalid") -> dict[str, str]:
    return {"field": field, "message": message, "code": code}


class ProblemResponse(JSONResponse):
    """problem+json in ASCII: a problem may quote the input it refuses, and input can hold
    text with no UTF-8 (a lone surrogate, which JSON's \\ud800 escapes spell)."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": f"urn:idp:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_error(error: Any) -> dict[str, str]:
    loc = error_location(error)
    if error["type"] == "json_invalid":
        detail = error.get("ctx", {}).get("error", "")
        position = f" at position {loc[1]}" if len(loc) > 1 else ""
        return field_error("body", f"invalid JSON{position}: {detail}".rstrip(": "), "json_invalid")
    # Drop the "body"/"query"/… prefix when a field name follows it.
    parts = loc[1:] if len(loc) > 1 and isinstance(loc[1], str) else loc
    return field_error(".".join(str(part) for part in parts), error["msg"], error["type"])


async def _handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status_code,
        exc.title,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _handle_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(error) for error in exc.errors()]
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        ValidationFailed.title,
        f"Invalid input: {fields}",
        slug=ValidationFailed.slug,
        errors=errors,
    )


# FastAPI's answer when the body cannot be decoded at all (invalid UTF-8, nesting deeper than
# the parser allows): bad input like malformed JSON, so the same 422 naming the body.
UNPARSEABLE_BODY = "There was an error parsing the body"


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == UNPARSEABLE_BODY:
        message = "the body is not UTF-8 JSON, or is nested too deeply"
        return problem_response(
            422,
            ValidationFailed.title,
            f"Invalid input: {message}",
            slug=ValidationFailed.slug,
            errors=[field_error("body", message, "unparseable")],
        )
    title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "HTTP Error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {"Allow": ", ".join(allowed_methods(request.app.routes, request.scope))}
    return problem_response(exc.status_code, title, str(exc.detail), headers=headers)


async def _handle_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(
        500, ProblemError.title, "An unexpected error occurred.", headers=identifying_headers()
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle_unexpected)
