"""/healthz (is the database reachable?) and /metrics (Prometheus text), both without authentication.

/healthz tells an unauthenticated caller only "ok" or "unavailable": the database
kind, the version and the reason for an outage (which names the database's host
and port) are shown to an authenticated admin only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tapewatch import __version__
from tapewatch.api.context import Context
from tapewatch.api.security import Public, caller_if_any
from tapewatch.service.actors import Actor

router = APIRouter(tags=["operations"], dependencies=[Public])


class Health(BaseModel):
    """Whether the server can reach its database; the details only for an admin."""

    status: str
    database: str | None = None
    version: str | None = None
    detail: str | None = None


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "The database is unreachable"}},
    summary="Liveness and database check (no authentication; details for admins)",
)
def healthz(ctx: Context, caller: Annotated[Actor | None, Depends(caller_if_any)]) -> Health | JSONResponse:
    """200 when a query on the database succeeds, else 503 (for load balancers); an admin also sees
    the database kind, the version and the reason for an outage."""
    try:
        with ctx.reads.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        body = _health(ctx, caller, "unavailable", reason)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    return _health(ctx, caller, "ok")


def _health(ctx: Context, caller: Actor | None, status: str, reason: str | None = None) -> Health:
    if caller is None or caller.role != "admin":
        return Health(status=status)
    return Health(status=status, database=ctx.reads.dialect.name, version=__version__, detail=reason)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics (no authentication: counts and timings only)",
)
def metrics(ctx: Context) -> PlainTextResponse:
    """Request counts and latency by route, WebSocket clients, alerts pushed (Prometheus text format)."""
    ctx.metrics.ws_clients.set(ctx.feed.clients)
    return PlainTextResponse(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
