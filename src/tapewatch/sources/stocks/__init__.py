"""Stock markets: exchange listings, the penny-stock filter, and bars from Yahoo Finance.

`ingest_stocks` is the `tapewatch ingest stocks` command; the modules underneath
are usable on their own: `listings` (symbol directories), `penny` (the filter),
`bars`/`yahoo` (yfinance into the lake), `schedule` (the live loop), `job` (one run).
"""

from tapewatch.sources.stocks.command import ingest_stocks

__all__ = ["ingest_stocks"]
