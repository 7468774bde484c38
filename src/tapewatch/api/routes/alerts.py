"""/alerts: list and read alerts (viewer), acknowledge and close them (analyst)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tapewatch.api.alert_view import AlertDetail, AlertItem, alert_detail, alert_item, alert_page
from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import (
    AlertId,
    AlertStatus,
    Closing,
    Limit,
    Name,
    Offset,
    Page,
    Severity,
    UtcTime,
    page_of,
)
from tapewatch.api.market import MarketView, market_view
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Analyst, Viewer
from tapewatch.service.workflow import AlertState

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["alerts"], responses=error_responses(401, 422, 503))
PathId = Annotated[AlertId, Path(description="the alert's id")]


@router.get("", response_model=Page[AlertItem], summary="List alerts, newest first")
async def list_alerts(
    request: Request,
    ctx: Context,
    actor: Viewer,
    typology: Annotated[list[Name] | None, Query(description="any of these typologies")] = None,
    severity: Annotated[list[Severity] | None, Query(description="any of these severities")] = None,
    venue: Annotated[list[Name] | None, Query(description="any of these venues")] = None,
    symbol: Annotated[list[Name] | None, Query(description="any of these symbols")] = None,
    status: Annotated[list[AlertStatus] | None, Query(description="any of these workflow states")] = None,
    since: Annotated[UtcTime | None, Query(description="detected at or after (ISO-8601)")] = None,
    until: Annotated[UtcTime | None, Query(description="detected before (ISO-8601)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Alerts matching every filter given (each filter may repeat: any of its values matches)."""

    async def page() -> bytes:
        items = await run_in_threadpool(
            alert_page,
            ctx.reads,
            limit=limit + 1,
            offset=offset,
            typology=typology,
            severity=severity,
            venue=venue,
            symbol=symbol,
            status=status,
            since=since,
            until=until,
        )
        return page_of(items, limit, offset).model_dump_json().encode()

    return Response(await ctx.list_cache.fetch(request.url.query, page), media_type="application/json")


@router.get("/{alert_id}", response_model=AlertDetail, responses=error_responses(404), summary="One alert")
async def get_alert(ctx: Context, actor: Viewer, alert_id: PathId) -> Response:
    """The alert, its evidence and follow-up, its workflow state and its audit history."""
    detail = await run_in_threadpool(alert_detail, ctx.reads, alert_id)
    return Response(detail.model_dump_json(), media_type="application/json")  # validated once, not twice


@router.get(
    "/{alert_id}/market",
    response_model=MarketView,
    responses=error_responses(404),
    summary="Trades and 1-minute candles around the alert",
)
async def get_market(ctx: Context, actor: Viewer, alert_id: PathId) -> MarketView:
    """Market data from the lake from 30 minutes before the alert to 30 after (empty, with a note, if none)."""
    alert = await run_in_threadpool(alert_item, ctx.reads, alert_id)
    return await run_in_threadpool(market_view, ctx.lake, alert)


@router.post(
    "/{alert_id}/acknowledge",
    response_model=AlertState,
    responses=error_responses(403, 404, 409),
    summary="Acknowledge a new alert",
)
def acknowledge(ctx: Context, actor: Analyst, alert_id: PathId) -> AlertState:
    """new → acknowledged: someone has seen it and is on it."""
    return ctx.workflow.acknowledge(actor, alert_id)


@router.post(
    "/{alert_id}/close",
    response_model=AlertState,
    responses=error_responses(403, 404, 409, 413),
    summary="Close an alert that is not in a case",
)
def close(ctx: Context, actor: Analyst, alert_id: PathId, body: Closing) -> AlertState:
    """Close with a disposition and a reason (an alert in a case closes with its case)."""
    return ctx.workflow.close_alert(actor, alert_id, body.disposition, body.reason)
