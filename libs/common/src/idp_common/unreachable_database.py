"""A request that finds the database unreachable is answered 503 with Retry-After, not 500.

Its own module, not ``database_service``: datasource-svc has a database but no queues, and
must not load the messaging stack (botocore: 17 MB of its idle RSS) to register a handler."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from idp_common.db import is_unreachable, unreachable_errors
from idp_common.errors import Unavailable, problem_response

logger = logging.getLogger(__name__)
# How soon a client may try again when the database is unreachable.
UNREACHABLE_RETRY_AFTER_SECONDS = 5


def answer_unreachable_database_with_503(app: FastAPI, database_url: str) -> None:
    """A request that finds the database unreachable is answered 503 with Retry-After: the
    client tries again later (an Idempotency-Key makes that safe), rather than a 500."""

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unreachable: %r", exc)
        return problem_response(
            Unavailable.status_code,
            Unavailable.title,
            "The database cannot be reached right now; try again shortly.",
            slug=Unavailable.slug,
            headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER_SECONDS)},
        )

    async def unavailable_if_dropped(request: Request, exc: Exception) -> JSONResponse:
        """A connection the server ended in the middle of the request is a bare DBAPIError
        on asyncpg (ConnectionDoesNotExistError): a 503 too. Any other is the 500 it was."""
        if not is_unreachable(exc):
            raise exc
        return await unavailable(request, exc)

    for error in unreachable_errors(database_url):
        app.add_exception_handler(error, unavailable)
    app.add_exception_handler(DBAPIError, unavailable_if_dropped)
