"""The instruments table: what each venue lists, kept in step with its listing (new, delisted, relisted)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tapewatch.store.models import InstrumentRow, utc_now


@dataclass
class Instrument:
    """One listing as a source reports it; the store adds first/last seen and the listing status."""

    venue: str
    symbol: str
    asset_class: str
    base: str | None = None
    quote: str | None = None
    name: str | None = None
    listing_exchange: str | None = None
    last_price: float | None = None
    market_cap: float | None = None
    avg_volume: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyncResult:
    """What a listing sync changed, for the run summary."""

    added: list[str] = field(default_factory=list)
    delisted: list[str] = field(default_factory=list)
    relisted: list[str] = field(default_factory=list)
    unchanged: int = 0


_FACTS = ("base", "quote", "name", "listing_exchange", "last_price", "market_cap", "avg_volume")


class InstrumentStore:
    """Instruments on a SQLAlchemy engine (the same database as the alerts)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sync(
        self, venue: str, asset_class: str, listing: Iterable[Instrument], now: datetime | None = None
    ) -> SyncResult:
        """Make the venue's stored instruments of this class match `listing`.

        New symbols are added, symbols missing from the listing are marked
        delisted (kept, so old alerts keep their context), and a delisted symbol
        that reappears is relisted. Facts the listing carries (names, prices)
        overwrite stored ones; facts it lacks (None) keep what is stored.
        """
        now = now or utc_now()
        listed = {instrument.symbol: instrument for instrument in listing}
        result = SyncResult()
        with self.engine.begin() as conn:
            stored = {
                row.symbol: row
                for row in conn.execute(
                    select(InstrumentRow.symbol, InstrumentRow.status).where(
                        InstrumentRow.venue == venue, InstrumentRow.asset_class == asset_class
                    )
                )
            }
            for symbol, instrument in listed.items():
                facts = {
                    name: getattr(instrument, name)
                    for name in _FACTS
                    if getattr(instrument, name) is not None
                }
                if instrument.details:
                    facts["details"] = instrument.details
                if symbol not in stored:
                    conn.execute(
                        InstrumentRow.__table__.insert().values(
                            venue=venue,
                            symbol=symbol,
                            asset_class=asset_class,
                            first_seen=now,
                            last_seen=now,
                            **{"details": {}, **facts},
                        )
                    )
                    result.added.append(symbol)
                    continue
                if stored[symbol].status == "delisted":
                    result.relisted.append(symbol)
                else:
                    result.unchanged += 1
                conn.execute(
                    update(InstrumentRow)
                    .where(InstrumentRow.venue == venue, InstrumentRow.symbol == symbol)
                    .values(status="listed", delisted_at=None, last_seen=now, **facts)
                )
            gone = [
                symbol for symbol, row in stored.items() if symbol not in listed and row.status == "listed"
            ]
            if gone:
                conn.execute(
                    update(InstrumentRow)
                    .where(InstrumentRow.venue == venue, InstrumentRow.symbol.in_(gone))
                    .values(status="delisted", delisted_at=now)
                )
            result.delisted = sorted(gone)
        return result

    def update_facts(self, venue: str, symbol: str, **facts: float | str | None) -> None:
        """Record market facts learnt later (last price, market cap, average volume)."""
        unknown = set(facts) - set(_FACTS)
        if unknown:
            raise ValueError(f"unknown instrument facts: {', '.join(sorted(unknown))}")
        with self.engine.begin() as conn:
            conn.execute(
                update(InstrumentRow)
                .where(InstrumentRow.venue == venue, InstrumentRow.symbol == symbol)
                .values(**facts)
            )

    def list(
        self, venue: str | None = None, asset_class: str | None = None, status: str | None = "listed"
    ) -> Sequence[InstrumentRow]:
        """Stored instruments, filtered; `status=None` includes delisted ones."""
        query = select(InstrumentRow).order_by(InstrumentRow.venue, InstrumentRow.symbol)
        if venue is not None:
            query = query.where(InstrumentRow.venue == venue)
        if asset_class is not None:
            query = query.where(InstrumentRow.asset_class == asset_class)
        if status is not None:
            query = query.where(InstrumentRow.status == status)
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(query))
