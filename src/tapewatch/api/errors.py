"""Every failure as a 4xx/5xx JSON body `{"detail": "<one line>"}`, never a traceback.

The service layer raises `TapewatchError` subclasses; they are mapped here, in
one place, to HTTP statuses. Request validation errors become one line naming
the input (`query parameter 'limit'`, `body: trades[3].price`) and what was
expected. Anything unexpected is logged server-side and answered with a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tapewatch.api.headers import SECURITY_HEADERS
from tapewatch.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TapewatchError,
)

log = logging.getLogger(__name__)

STATUS_OF: dict[type[TapewatchError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDeniedError: 403,
    InputError: 422,
}
DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid credentials (an API key or a console session)",
    403: "The caller's role does not allow this",
    404: "No such record",
    409: "Not allowed in the record's current state",
    413: "Request body larger than api.max_body_bytes",
    422: "Invalid input: the message names the input and what was expected",
    429: "Too many failed log-ins: wait the Retry-After seconds",
    503: "The database is unreachable",
}
ERROR_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
SECRET_FIELDS = frozenset({"password", "api_key", "token", "secret"})
"""Inputs never echoed back in an error message (a mistyped secret is still a secret)."""
MAX_ECHO = 60


class ErrorBody(BaseModel):
    """What every error response carries: one line that says what was wrong and what was expected."""

    detail: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses, so clients (and schemathesis) know the shapes."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses}


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response in the one shape every route uses."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def status_for(exc: TapewatchError) -> int:
    """The HTTP status of a service error (the most specific class wins; other input errors are 422)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 422


def describe_validation(errors: Sequence[Any]) -> str:
    """One line for a list of pydantic/FastAPI validation errors: the first, plus how many more."""
    if not errors:
        return "invalid request"
    first = errors[0]
    line = f"{_where(tuple(first.get('loc', ())))}: {_message(first)}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def _where(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "request"
    kind, rest = loc[0], loc[1:]
    if kind in ("query", "path", "header", "cookie") and rest:
        return f"{kind} parameter '{rest[0]}'"
    if kind == "body":
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest).lstrip(".")
        return f"body: {path}" if path else "body"
    return ".".join(str(part) for part in loc)


def _message(problem: dict[str, Any]) -> str:
    kind = problem.get("type", "")
    if kind == "json_invalid":
        reason = (problem.get("ctx") or {}).get("error", "")
        return f"not valid JSON ({reason})" if reason else "not valid JSON"
    if kind == "missing":
        return "required, but missing"
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    loc = tuple(problem.get("loc", ()))
    # Echo a named field's value, never a secret's, nor a whole body (it may hold one).
    echo = len(loc) > 1 and str(loc[-1]) not in SECRET_FIELDS and kind != "extra_forbidden"
    if "input" in problem and echo:
        shown = repr(problem["input"])
        if len(shown) > MAX_ECHO:
            shown = shown[:MAX_ECHO] + "…"
        message += f" (got {shown})"
    return message


def install_error_handlers(app: FastAPI) -> None:
    """Map service errors, validation errors, HTTP errors and database trouble to one-line JSON bodies."""

    @app.exception_handler(TapewatchError)
    async def _service_error(request: Request, exc: TapewatchError) -> JSONResponse:
        return error(status_for(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold or compare (out of its range, bytes it refuses): the
        # routes' own validation should catch these first; this keeps a miss a 422, not a 500.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return error(422, f"a value in the request cannot be used by the database: {reason}")

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc.orig or exc).strip().splitlines()[0])
        return error(503, "the database is unavailable; try again shortly", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # answered outside every middleware (Starlette's last resort), so the headers come along here
        return error(500, "internal error (logged on the server)", headers=ERROR_HEADERS)
