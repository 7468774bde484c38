"""The instruments table kept in step with the listings and with Yahoo's facts (price, volume, market cap).

Each venue is synced from its listing (new symbols added, missing ones delisted).
Facts are asked of Yahoo before the sync and handed to it on the Instruments, so
thousands of symbols are written in one transaction per venue (`update_facts` is
a transaction per symbol: ~12 ms each on SQLite). Facts Yahoo does not give stay as
stored. Venues whose listing could not be read keep their stored instruments, and
their facts go through `update_facts`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from tapewatch.config import StocksSettings
from tapewatch.errors import InputError, TapewatchError
from tapewatch.io.deadletter import REJECT_SCHEMA, write_dead_letters
from tapewatch.sources.stocks.fetch import read_text
from tapewatch.sources.stocks.listings import Listing, parse_listing
from tapewatch.sources.stocks.venues import Venue, yahoo_symbol
from tapewatch.sources.stocks.yahoo import Facts, YahooClient
from tapewatch.store.instruments import Instrument, InstrumentStore, SyncResult

FACTS = ("last_price", "avg_volume", "market_cap")
INSTRUMENT_SCHEMA: dict[str, pl.DataType] = {
    "venue": pl.String(),
    "symbol": pl.String(),
    "yahoo": pl.String(),
    "name": pl.String(),
    **{name: pl.Float64() for name in FACTS},
}
"""The columns of the instruments frame that the penny filter and the bar download read."""


@dataclass
class CatalogReport:
    """What a refresh changed, for the run summary."""

    synced: dict[str, SyncResult] = field(default_factory=dict)
    not_synced: dict[str, str] = field(default_factory=dict)
    rejected: int = 0
    dead_letter_path: Path | None = None
    test_issues: int = 0
    facts_errors: list[str] = field(default_factory=list)


class Catalog:
    """Listings and facts of some venues, in the instruments table."""

    def __init__(
        self,
        settings: StocksSettings,
        store: InstrumentStore,
        yahoo: YahooClient,
        venues: list[Venue],
        dead_letters: Path,
    ) -> None:
        self.settings = settings
        self.store = store
        self.yahoo = yahoo
        self.venues = venues
        self.dead_letters = dead_letters

    def refresh(self, now: datetime, *, limit: int | None = None, strict: bool = True) -> CatalogReport:
        """Read the listings, learn the facts of the first `limit` instruments, sync every venue.

        `strict=False` reports a listing that cannot be read instead of raising,
        and keeps that venue's stored instruments.
        """
        report = CatalogReport()
        listed = self._read_listings(report, strict=strict)
        working = _first(
            pl.concat([self._listing_frame(listed), self.instruments(exclude=list(listed))]), limit
        )
        quotes = self.yahoo.facts(working["yahoo"].to_list(), batch=self.settings.quote_batch)
        report.facts_errors = quotes.errors
        for venue in self.venues:
            if venue.name in listed:
                facts = [_with_facts(i, quotes.found.get(i.details["yahoo"])) for i in listed[venue.name]]
                report.synced[venue.name] = self.store.sync(venue.name, "stock", facts, now=now)
        for row in working.filter(~pl.col("venue").is_in(list(listed))).iter_rows(named=True):
            fresh = _with_facts(
                Instrument(row["venue"], row["symbol"], "stock"), quotes.found.get(row["yahoo"])
            )
            changed = {
                name: getattr(fresh, name) for name in FACTS if getattr(fresh, name) not in (None, row[name])
            }
            if changed:
                self.store.update_facts(row["venue"], row["symbol"], **changed)
        return report

    def instruments(self, *, limit: int | None = None, exclude: list[str] | None = None) -> pl.DataFrame:
        """The listed instruments of the venues with their stored facts, by venue and symbol (first `limit`)."""
        rows = [
            {
                "venue": row.venue,
                "symbol": row.symbol,
                "yahoo": (row.details or {}).get("yahoo") or yahoo_symbol(venue, row.symbol),
                "name": row.name,
                **{name: getattr(row, name) for name in FACTS},
            }
            for venue in self.venues
            if venue.name not in (exclude or [])
            for row in self.store.list(venue.name, "stock")
        ]
        return _first(pl.DataFrame(rows, schema=INSTRUMENT_SCHEMA), limit)

    def read_listing(self, kind: str) -> Listing:
        """Fetch and parse one listing file (`Venue.source`) from the URL or path in the stocks settings."""
        location = {
            "nasdaq_listed": self.settings.nasdaq_listed_url,
            "other_listed": self.settings.other_listed_url,
            "tsx": self.settings.tsx_url,
            "tsxv": self.settings.tsxv_url,
        }[kind]
        if not location:
            raise InputError(f"listing for {kind}: no URL or path in the settings (stocks.{kind}_url)")
        text = read_text(
            location,
            timeout_s=self.settings.http_timeout_s,
            retries=self.settings.http_retries,
            backoff_s=self.settings.http_backoff_s,
        )
        return parse_listing(text, location, kind)

    def _read_listings(self, report: CatalogReport, *, strict: bool) -> dict[str, list[Instrument]]:
        """Each listing file the venues need, read once; the venues that can be synced, with their listing."""
        listed: dict[str, list[Instrument]] = {}
        rejected = [pl.DataFrame(schema=REJECT_SCHEMA)]
        for kind in dict.fromkeys(venue.source for venue in self.venues):
            venues = [venue for venue in self.venues if venue.source == kind]
            try:
                listing = self.read_listing(kind)
            except TapewatchError as exc:
                if strict:
                    raise
                report.not_synced.update({venue.name: str(exc) for venue in venues})
                continue
            rejected.append(listing.rejected)
            report.test_issues += listing.test_issues
            for venue in venues:
                mine = listing.for_venue(venue)
                if not mine and self.store.list(venue.name, "stock"):
                    # An empty listing for a venue that had instruments is a broken file, not a mass delisting.
                    report.not_synced[venue.name] = (
                        f"{listing.source} lists nothing for {venue.name}; kept the stored instruments"
                    )
                    continue
                listed[venue.name] = mine
        rejects = pl.concat(rejected)
        report.rejected = rejects.height
        if rejects.height:
            report.dead_letter_path = self.dead_letters
            write_dead_letters(rejects, self.dead_letters)
        return listed

    @staticmethod
    def _listing_frame(listed: dict[str, list[Instrument]]) -> pl.DataFrame:
        rows = [
            {"venue": i.venue, "symbol": i.symbol, "yahoo": i.details["yahoo"], "name": i.name}
            for instruments in listed.values()
            for i in instruments
        ]
        return pl.DataFrame(rows, schema=INSTRUMENT_SCHEMA)


def _first(frame: pl.DataFrame, limit: int | None) -> pl.DataFrame:
    """The instruments in one fixed order (venue, symbol), cut to `limit` (--limit)."""
    frame = frame.sort("venue", "symbol")
    return frame.head(limit) if limit else frame


def _with_facts(instrument: Instrument, facts: Facts | None) -> Instrument:
    """The instrument carrying Yahoo's facts (None where Yahoo said nothing: the store keeps its value)."""
    if facts is None:
        return instrument
    return dataclasses.replace(instrument, **{name: getattr(facts, name) for name in FACTS})
