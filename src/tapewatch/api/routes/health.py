"""/healthz (is the database reachable?) and /metrics (Prometheus text), both without authentication."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tapewatch import __version__
from tapewatch.api.context import Context

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Whether the server can reach its database."""

    status: str
    database: str
    version: str
    detail: str | None = None


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is unreachable"}},
    summary="Liveness and database check (no authentication)",
)
def healthz(ctx: Context) -> Health | JSONResponse:
    """200 when a query on the database succeeds, else 503 with the reason (for load balancers)."""
    backend = ctx.reads.dialect.name
    try:
        with ctx.reads.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        body = Health(status="unavailable", database=backend, version=__version__, detail=reason)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database=backend, version=__version__)


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
