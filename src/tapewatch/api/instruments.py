"""Instruments as the API lists them: the instrument store's rows as a stable response model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from tapewatch.store.instruments import InstrumentStore


class InstrumentItem(BaseModel):
    """One listing on one venue, with the facts its source reports and when it was seen."""

    model_config = ConfigDict(from_attributes=True)

    venue: str
    symbol: str
    asset_class: str
    base: str | None
    quote: str | None
    name: str | None
    listing_exchange: str | None
    status: str
    first_seen: datetime
    last_seen: datetime
    delisted_at: datetime | None
    last_price: float | None
    market_cap: float | None
    avg_volume: float | None
    details: dict[str, Any]


def instrument_page(
    engine: Engine, venue: str | None, asset_class: str | None, status: str | None, limit: int, offset: int
) -> list[InstrumentItem]:
    """Up to `limit` instruments from `offset`, ordered by venue and symbol.

    The instrument store has no paging yet, so the page is cut from the full
    filtered list: fine for tens of thousands of listings, to be pushed into
    SQL if venues ever list far more.
    """
    rows = InstrumentStore(engine).list(venue=venue, asset_class=asset_class, status=status)
    return [InstrumentItem.model_validate(row) for row in rows[offset : offset + limit]]
