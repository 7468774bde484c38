"""Parse the exchanges' symbol directories into Instruments, setting malformed lines aside.

Three layouts, all as published:

- NASDAQ Trader `nasdaqlisted.txt`: pipe-separated, header
  `Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares`.
- NASDAQ Trader `otherlisted.txt` (NYSE, NYSE American, NYSE Arca, Cboe BZX, IEX): header
  `ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol`.
  Both end with `File Creation Time: mmddyyyyhh:mm|||||||`; a file without that footer
  is refused, because a truncated listing would wrongly delist every symbol it lost.
- The TSX / TSX Venture company directory, JSON:
  `{"last_updated": …, "length": N, "results": [{"symbol", "name", "instruments": [{"symbol", "name"}]}]}`;
  each company's instruments (`ABC`, `ABC.UN`, `ABC.PR.A`) are the listed securities.

Test issues are skipped (counted), ETFs kept and flagged in `details["etf"]`. A line
that cannot be read becomes a dead letter (REJECT_SCHEMA) with its reason; a file in
another layout is a one-line InputError that names it and the header it should have.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from tapewatch.errors import InputError
from tapewatch.io.deadletter import REJECT_SCHEMA
from tapewatch.sources.stocks.venues import BY_CODE, VENUES, Venue, yahoo_symbol
from tapewatch.store.instruments import Instrument

NASDAQ_HEADER = (
    "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares"
)
OTHER_HEADER = "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
TSX_LAYOUT = (
    '{"last_updated": …, "length": N, "results": [{"symbol", "name", "instruments": [{"symbol", "name"}]}]}'
)
FOOTER = "File Creation Time:"
NASDAQ_TZ = ZoneInfo("America/New_York")
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.$^+=#*-]{0,19}$")
_FLAGS = {"Y": True, "N": False}


@dataclass
class Listing:
    """What one listing file holds: its instruments, the lines set aside, and when it was made."""

    source: str
    instruments: list[Instrument] = field(default_factory=list)
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    test_issues: int = 0
    created: datetime | None = None

    def for_venue(self, venue: Venue) -> list[Instrument]:
        """The instruments of one venue (otherlisted.txt holds several)."""
        return [instrument for instrument in self.instruments if instrument.venue == venue.name]


class _Rejects:
    """Collects dead letters: source file, 1-based line (or entry) number, reason, the raw record as JSON."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[dict[str, Any]] = []

    def add(self, row: int, reason: str, record: Any) -> None:
        self.rows.append({"source": self.source, "row": row, "reason": reason, "record": json.dumps(record)})

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=REJECT_SCHEMA)


def parse_nasdaq_listed(text: str, source: str) -> Listing:
    """`nasdaqlisted.txt`: every NASDAQ security; details keep market category and financial status.

    Financial status matters for penny stocks: `D` (deficient) is how NASDAQ marks a
    company below the $1 minimum bid, one step from delisting.
    """

    def instrument(row: dict[str, str]) -> Instrument:
        return _instrument(
            VENUES["nasdaq"],
            row["Symbol"],
            row,
            market_category=row["Market Category"] or None,
            financial_status=row["Financial Status"] or None,
        )

    return _parse_pipe(text, source, NASDAQ_HEADER, instrument)


def parse_other_listed(text: str, source: str) -> Listing:
    """`otherlisted.txt`: NYSE, NYSE American, NYSE Arca, Cboe BZX and IEX listings, by exchange code."""

    def instrument(row: dict[str, str]) -> Instrument:
        code = row["Exchange"]
        if code not in BY_CODE:
            raise ValueError(f"unknown exchange code '{code}' (expected one of {', '.join(BY_CODE)})")
        return _instrument(
            BY_CODE[code],
            row["ACT Symbol"],
            row,
            cqs_symbol=row["CQS Symbol"] or None,
            nasdaq_symbol=row["NASDAQ Symbol"] or None,
        )

    return _parse_pipe(text, source, OTHER_HEADER, instrument)


def _instrument(venue: Venue, symbol: str, row: dict[str, str], **details: Any) -> Instrument:
    """One security from a pipe-file row; raises ValueError with the reason when a field is unusable."""
    if not _SYMBOL.match(symbol):
        raise ValueError(f"symbol '{symbol}' is not a listed symbol")
    if row["ETF"] not in _FLAGS:
        raise ValueError(f"ETF flag '{row['ETF']}' is not Y or N")
    lot = row["Round Lot Size"]
    if lot and not lot.isdigit():
        raise ValueError(f"round lot size '{lot}' is not a whole number")
    return Instrument(
        venue=venue.name,
        symbol=symbol,
        asset_class="stock",
        quote=venue.currency,
        name=row["Security Name"].strip() or None,
        listing_exchange=venue.exchange,
        details={
            "etf": _FLAGS[row["ETF"]],
            "round_lot": int(lot) if lot else None,
            "yahoo": yahoo_symbol(venue, symbol),
            **details,
        },
    )


def _parse_pipe(
    text: str, source: str, header: str, build: Callable[[dict[str, str]], Instrument]
) -> Listing:
    """The shared reading of both NASDAQ Trader files: header check, rows, footer, test issues."""
    lines = text.lstrip("\ufeff").splitlines()
    first = lines[0].strip() if lines else ""
    if first != header:
        shown = first[:120] or "an empty file"
        raise InputError(f"listing '{source}': found '{shown}'; expected the header '{header}'")
    names = header.split("|")
    listing = Listing(source)
    rejects = _Rejects(source)
    seen: dict[str, int] = {}
    footer = False
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith(FOOTER):
            footer = True
            listing.created = _creation_time(line)
            continue
        values = [value.strip() for value in line.split("|")]
        if len(values) != len(names):
            rejects.add(number, f"expected {len(names)} fields, found {len(values)}", {"line": line})
            continue
        row = dict(zip(names, values, strict=True))
        test = row["Test Issue"]
        if test not in _FLAGS:
            rejects.add(number, f"test issue flag '{test}' is not Y or N", {"line": line})
            continue
        if _FLAGS[test]:
            listing.test_issues += 1
            continue
        try:
            instrument = build(row)
        except ValueError as reason:
            rejects.add(number, str(reason), {"line": line})
            continue
        if instrument.symbol in seen:
            rejects.add(number, f"duplicate symbol (first on line {seen[instrument.symbol]})", {"line": line})
            continue
        seen[instrument.symbol] = number
        listing.instruments.append(instrument)
    if not footer:
        raise InputError(
            f"listing '{source}': no '{FOOTER}' footer, so the file looks truncated "
            "(a partial listing would delist every missing symbol); download it again"
        )
    listing.rejected = rejects.frame()
    return listing


def _creation_time(footer: str) -> datetime | None:
    """`File Creation Time: 0308202418:01|||||||` → 2024-03-08 18:01 New York time (None if unreadable)."""
    stamp = footer.removeprefix(FOOTER).split("|", 1)[0].strip()
    try:
        return datetime.strptime(stamp, "%m%d%Y%H:%M").replace(tzinfo=NASDAQ_TZ)
    except ValueError:
        return None


def parse_tsx(text: str, source: str, venue: Venue) -> Listing:
    """The TSX or TSXV company directory: each company's listed instruments, or the company itself."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise InputError(
            f"listing '{source}': not the TSX company-directory layout; expected JSON {TSX_LAYOUT}"
        )
    listing = Listing(source)
    rejects = _Rejects(source)
    seen: dict[str, int] = {}
    for number, company in enumerate(document["results"], start=1):
        try:
            securities = _tsx_securities(company)
        except (TypeError, ValueError) as reason:
            rejects.add(number, str(reason), company)
            continue
        for symbol, name in securities:
            if symbol in seen:
                rejects.add(number, f"duplicate symbol '{symbol}' (first in entry {seen[symbol]})", company)
                continue
            seen[symbol] = number
            listing.instruments.append(
                Instrument(
                    venue=venue.name,
                    symbol=symbol,
                    asset_class="stock",
                    quote=venue.currency,
                    name=name,
                    listing_exchange=venue.exchange,
                    details={"company": company["symbol"], "yahoo": yahoo_symbol(venue, symbol)},
                )
            )
    if isinstance(document.get("last_updated"), int | float):
        listing.created = datetime.fromtimestamp(document["last_updated"], NASDAQ_TZ)
    listing.rejected = rejects.frame()
    return listing


def _tsx_securities(company: Any) -> list[tuple[str, str | None]]:
    """(symbol, name) of each security of one directory entry; the error raised names what is wrong."""
    if not isinstance(company, dict) or not isinstance(company.get("symbol"), str):
        raise TypeError("entry has no symbol")
    instruments = company.get("instruments") or [{"symbol": company["symbol"], "name": company.get("name")}]
    if not isinstance(instruments, list):
        raise TypeError("instruments is not a list")
    securities = []
    for item in instruments:
        symbol = item.get("symbol") if isinstance(item, dict) else None
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip().upper()):
            raise ValueError(f"instrument symbol {symbol!r} is not a listed symbol")
        name = item.get("name")
        securities.append((symbol.strip().upper(), name.strip() if isinstance(name, str) else None))
    return securities


def parse_listing(text: str, source: str, kind: str) -> Listing:
    """Parse one listing file of a kind named by `Venue.source`."""
    if kind == "nasdaq_listed":
        return parse_nasdaq_listed(text, source)
    if kind == "other_listed":
        return parse_other_listed(text, source)
    return parse_tsx(text, source, VENUES[kind])
