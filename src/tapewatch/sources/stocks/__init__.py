"""Stock markets: exchange listings, the penny-stock filter, and bars from Yahoo Finance.

The modules: `listings` (symbol directories), `penny` (the filter), `bars`/`yahoo`
(yfinance into the lake), `schedule` (the live loop), `job` (one run). The command's
face, `tapewatch ingest stocks`, is `tapewatch.cli.stocks`.
"""
