"""Stock venues Tapewatch knows: which listing file names them, their currency, and Yahoo's ticker for a symbol.

Instruments are stored per *venue* (the exchange that lists them: `nasdaq`, `nyse`,
`amex`, `arca`, `cboe`, `iex`, `tsx`, `tsxv`), each venue synced on its own, so a
symbol that moves from NASDAQ to NYSE shows up as delisted on one and added on the
other. Symbols keep the listing's own symbology (`BRK.B`, `ABR$D`, `ABC.UN`); the
Yahoo ticker (`BRK-B`, `ABR-PD`, `ABC-UN.TO`) is derived here and only used to fetch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tapewatch.errors import InputError


@dataclass(frozen=True)
class Venue:
    """One listing venue: where its listing comes from and how Yahoo names its tickers."""

    name: str
    exchange: str  # the human label stored as the instrument's listing_exchange
    source: str  # listing file: "nasdaq_listed", "other_listed", "tsx" or "tsxv"
    code: str | None  # exchange code in otherlisted.txt
    currency: str
    yahoo_suffix: str


VENUES: dict[str, Venue] = {
    venue.name: venue
    for venue in (
        Venue("nasdaq", "NASDAQ", "nasdaq_listed", None, "USD", ""),
        Venue("nyse", "NYSE", "other_listed", "N", "USD", ""),
        Venue("amex", "NYSE American", "other_listed", "A", "USD", ""),
        Venue("arca", "NYSE Arca", "other_listed", "P", "USD", ""),
        Venue("cboe", "Cboe BZX", "other_listed", "Z", "USD", ""),
        Venue("iex", "IEX", "other_listed", "V", "USD", ""),
        Venue("tsx", "TSX", "tsx", None, "CAD", ".TO"),
        Venue("tsxv", "TSXV", "tsxv", None, "CAD", ".V"),
    )
}
US_DEFAULT = ("nasdaq", "nyse", "amex")
"""The venues `--exchanges` means when not given: where US penny stocks trade on an exchange."""

BY_CODE: dict[str, Venue] = {venue.code: venue for venue in VENUES.values() if venue.code}


def parse_exchanges(text: str) -> list[Venue]:
    """`nasdaq,nyse,tsxv` → venues, in the order given; an unknown name is a one-line error."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in VENUES]
    if unknown or not names:
        raise InputError(f"--exchanges '{text}': expected a comma-separated list of {', '.join(VENUES)}")
    return [VENUES[name] for name in dict.fromkeys(names)]


# Suffix conventions of the NASDAQ/CQS "ACT" symbology and of TSX, and Yahoo's spelling of each.
_US_SUFFIXES = (
    (re.compile(r"\$([A-Z]*)$"), r"-P\1"),
    (re.compile(r"\.WS$"), "-WT"),
    (re.compile(r"\.U$"), "-U"),
)
_TSX_SUFFIXES = ((re.compile(r"\.PR\.([A-Z])$"), r"-P\1"),)


def yahoo_symbol(venue: Venue, symbol: str) -> str:
    """Yahoo's ticker for a listed symbol: `BRK.B`→`BRK-B`, `ABR$D`→`ABR-PD`, TSX `ABC.UN`→`ABC-UN.TO`.

    Best effort for rare security types (rights, when-issued): a ticker Yahoo does
    not know is reported as "no data" and skipped, never an error.
    """
    for pattern, replacement in _TSX_SUFFIXES if venue.yahoo_suffix else _US_SUFFIXES:
        symbol = pattern.sub(replacement, symbol)
    return symbol.replace(".", "-") + venue.yahoo_suffix
