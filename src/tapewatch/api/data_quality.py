"""The data-quality view: per venue/symbol, which stretches of trades the lake holds and which are known missing.

An alert is only as good as the trades it was decided on. The coverage ledger knows
what a backfill fetched and what the venue could not give; the gap ledger knows what
a live refill could not repair (`pipeline.gaps`). This view puts the three side by
side for each symbol, so an analyst can see where the picture is partial before
trusting (or dismissing) an alert there; alerts decided across a gap also name it in
their own evidence (`data_gaps`).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tapewatch.epoch import from_millis
from tapewatch.io.lake import Lake
from tapewatch.pipeline.gaps import GapLedger, KnownGap


class Span(BaseModel):
    """A stretch of time, [start, end)."""

    start: datetime
    end: datetime


class Missing(Span):
    """A stretch of trades known to be missing."""

    missing_ids: list[int] | None = Field(
        default=None, description="first and last missing trade id, where the venue's ids are consecutive"
    )


class SymbolQuality(BaseModel):
    """What the lake holds of one venue/symbol's trades, and what it knows it lacks."""

    venue: str
    symbol: str
    covered: list[Span] = Field(description="stretches fetched and verified (quiet ones included)")
    not_available: list[Missing] = Field(description="stretches the venue could not give")
    unrepaired: list[Missing] = Field(description="trades missed live that no refill recovered")


def quality_rows(
    lake: Lake, venue: str | None, symbol: str | None, limit: int, offset: int
) -> list[SymbolQuality]:
    """Up to `limit` symbols' views from `offset` on, by venue then symbol (optionally only one venue/symbol)."""
    ledger = GapLedger(lake)
    chosen = [
        (v, s)
        for v, s in ledger.symbols()
        if (venue is None or v == venue) and (symbol is None or s == symbol)
    ]
    return [_view(ledger, v, s) for v, s in chosen[offset : offset + limit]]


def _view(ledger: GapLedger, venue: str, symbol: str) -> SymbolQuality:
    coverage = ledger.coverage(venue, symbol)
    covered = (
        []
        if coverage is None
        else [Span(start=from_millis(a), end=from_millis(b)) for a, b in coverage.spans]
    )
    gaps = ledger.gaps(venue, symbol)
    return SymbolQuality(
        venue=venue,
        symbol=symbol,
        covered=covered,
        not_available=[_missing(gap) for gap in gaps if gap.state == "not available"],
        unrepaired=[_missing(gap) for gap in gaps if gap.state == "unrepaired"],
    )


def _missing(gap: KnownGap) -> Missing:
    return Missing(start=gap.start, end=gap.end, missing_ids=gap.evidence().get("missing_ids"))
