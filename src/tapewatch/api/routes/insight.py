"""Read-only views for viewers: instruments the venues list, the per-symbol risk view, data quality."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from tapewatch.api.context import Context
from tapewatch.api.data_quality import SymbolQuality, quality_rows
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import Limit, Name, Offset, Page, UtcTime, page_of
from tapewatch.api.instruments import InstrumentItem, instrument_page
from tapewatch.api.risk import RiskView, risk_view
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Viewer
from tapewatch.risk.bars import last_bar_signals
from tapewatch.risk.evidence import risk_table
from tapewatch.risk.score import RiskScore

router = APIRouter(prefix=API_PREFIX, tags=["markets"], responses=error_responses(401, 422, 503))


@router.get("/instruments", response_model=Page[InstrumentItem], summary="List instruments")
def list_instruments(
    ctx: Context,
    actor: Viewer,
    venue: Annotated[Name | None, Query(description="only this venue")] = None,
    asset_class: Annotated[Literal["crypto", "stock"] | None, Query(description="crypto or stock")] = None,
    status: Annotated[
        Literal["listed", "delisted", "any"], Query(description="listing status; any: both")
    ] = "listed",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InstrumentItem]:
    """Instruments by venue and symbol, as their venues list them (delisted ones are kept)."""
    rows = instrument_page(
        ctx.reads, venue, asset_class, None if status == "any" else status, limit + 1, offset
    )
    return page_of(rows, limit, offset)


@router.get(
    "/risk/{venue}/{symbol:path}",
    response_model=RiskView,
    responses=error_responses(
        404
    ),  # a venue or symbol the path cannot carry (e.g. a newline) matches no route
    summary="Risk of one symbol: 1–100 score with reasons, counts and recent alerts",
)
def get_risk(
    ctx: Context,
    actor: Viewer,
    venue: Annotated[Name, Path(description="the venue, e.g. binance")],
    symbol: Annotated[Name, Path(description="the symbol, e.g. PUMP/USDT (the slash may stay unescaped)")],
    since: Annotated[UtcTime | None, Query(description="count alerts detected from here on")] = None,
) -> RiskView:
    """The 1–100 score now with its reasons, recent alerts, counts by typology and severity, and the
    highest severity seen on the symbol."""
    return risk_view(ctx.reads, venue, symbol, ctx.settings.risk, ctx.lake, since)


@router.get("/risk", response_model=list[RiskScore], summary="Risk table: the highest-scoring symbols now")
def get_risk_table(
    ctx: Context,
    actor: Viewer,
    venue: Annotated[Name | None, Query(description="only this venue")] = None,
    limit: Limit = 50,
) -> list[RiskScore]:
    """Every symbol with recent alerts or a listing, scored now, highest first (as `tapewatch risk`)."""
    table = risk_table(
        ctx.reads,
        datetime.now(UTC),
        ctx.settings.risk,
        venue=venue,
        lake=ctx.lake,
        bar_signals=last_bar_signals,
    )
    return table[:limit]


@router.get(
    "/data-quality",
    response_model=Page[SymbolQuality],
    summary="Data quality: per symbol, the trades the lake holds and the gaps it knows of",
)
def list_data_quality(
    ctx: Context,
    actor: Viewer,
    venue: Annotated[Name | None, Query(description="only this venue")] = None,
    symbol: Annotated[Name | None, Query(description="only this symbol, e.g. PUMP/USDT")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SymbolQuality]:
    """Each venue/symbol with a ledger in the lake: stretches of trades fetched, stretches the venue
    could not give, and live gaps no refill repaired (alerts decided across one carry it as `data_gaps`)."""
    return page_of(quality_rows(ctx.lake, venue, symbol, limit + 1, offset), limit, offset)
