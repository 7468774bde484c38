"""One spelling per instrument and venue: `nuls/btc`, `NULS-BTC`, `nuls_btc` and `NULSBTC` are all `NULS/BTC`.

Files, exchanges and people spell a pair many ways; detectors group by symbol,
so two spellings would be two instruments, each with half the history. Crypto
symbols take ccxt's unified form, upper-case `BASE/QUOTE` where the quote is a
known quote asset, with a derivative's `:SETTLE` suffix kept. Stock venues keep
their listing's symbology (`BRK.B`, `RY.TO`, `ABR$D`), upper-cased: a ticker
such as `CARS` must not become `C/ARS`. Every other venue is taken as crypto.
On a venue nobody named (`unknown`), a run-together name is split only before a
crypto quote asset (`NULSBTC`, `PEPEUSDT`), never before a fiat code, so an
unlabelled stock file keeps `CARS` and `EURN`; `--venue` settles the rest.

The rule is one Polars expression (`canonical_symbol`); `canonical_column`
applies it once per distinct value of a large column, `canonical_symbol_of`
to one name.
"""

from __future__ import annotations

import polars as pl

QUOTE_ASSETS: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT", "BUSD", "USDC", "FDUSD", "TUSD", "USDP", "USDS", "DAI", "PAX", "AEUR", "EURI",
            "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
            "USD", "EUR", "GBP", "AUD", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "PLN", "RON", "ARS",
            "JPY", "MXN", "COP", "CZK", "IDRT", "BIDR", "BKRW", "BVND", "VAI",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
"""Binance's quote assets and USD (Coinbase, Kraken: `BTC-USD`), longest first, so `ETHFDUSD` splits
as ETH/FDUSD, not ETHFD/USD."""

FIAT_QUOTES: frozenset[str] = frozenset(
    ("USD", "EUR", "GBP", "AUD", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "PLN", "RON", "ARS", "JPY", "MXN",
     "COP", "CZK")
)  # fmt: skip
"""Quote assets that are also the tail of ordinary stock tickers (`CARS`, `SEUR`)."""
UNKNOWN_VENUE = "unknown"
"""The venue of a file that names none (`tapewatch.io.normalise`)."""

STOCK_VENUES: tuple[str, ...] = ("nasdaq", "nyse", "amex", "arca", "cboe", "iex", "tsx", "tsxv")
"""The listing venues of `tapewatch.sources.stocks.venues`, whose symbols are tickers, not pairs."""

_QUOTE = "|".join(QUOTE_ASSETS)
_SPELLED_OUT = rf"^([A-Z0-9]+)[-_ ]({_QUOTE})$"
"""`NULS-BTC`, `NULS_BTC`, `NULS BTC`: a separator before a known quote asset."""
_RUN_TOGETHER = rf"^([A-Z0-9]+?)({_QUOTE})$"
"""`NULSBTC`: the shortest base, hence the longest known quote asset at the end."""
_RUN_TOGETHER_CRYPTO = rf"^([A-Z0-9]+?)({'|'.join(q for q in QUOTE_ASSETS if q not in FIAT_QUOTES)})$"
"""The same, before a crypto quote asset only: what an unnamed venue's run-together names are split by."""


def canonical_symbol(symbol: pl.Expr, venue: pl.Expr) -> pl.Expr:
    """Each symbol in its venue's one spelling (null stays null, blank stays blank for the rules to refuse)."""
    upper = symbol.str.strip_chars().str.to_uppercase()
    pair = upper.str.replace(r":.*$", "")
    settle = upper.str.extract(r"(:.*)$", 1).fill_null("")
    unnamed = (venue.is_null() | (venue.str.to_lowercase() == UNKNOWN_VENUE)).fill_null(True)
    unified = (
        pl.when(pair.str.contains("/"))
        .then(pair)
        .when(pair.str.contains(_SPELLED_OUT))
        .then(pair.str.replace(_SPELLED_OUT, "$1/$2"))
        .when(unnamed)
        .then(pair.str.replace(_RUN_TOGETHER_CRYPTO, "$1/$2"))
        .otherwise(pair.str.replace(_RUN_TOGETHER, "$1/$2"))
    )
    return pl.when(venue.str.to_lowercase().is_in(STOCK_VENUES)).then(upper).otherwise(unified + settle)


def canonical_column(symbol: pl.Expr, venue: pl.Expr | str, values: pl.Series) -> pl.Expr:
    """`canonical_symbol` for a column whose `values` are known: the rule runs once per distinct value.

    A file holds a few symbols in millions of rows, and the rule's regular expressions would
    cost seconds per ten million rows; two lookups (crypto and stock spelling) cost one pass.
    A column already canonical is left as it is.
    """
    distinct = pl.DataFrame({"symbol": values.cast(pl.String).drop_nulls().unique()})
    spellings = distinct.with_columns(
        canonical_symbol(pl.col("symbol"), pl.lit("crypto")).alias("crypto"),
        canonical_symbol(pl.col("symbol"), pl.lit(UNKNOWN_VENUE)).alias("unnamed"),
        canonical_symbol(pl.col("symbol"), pl.lit(STOCK_VENUES[0])).alias("stock"),
    )

    def looked_up(spelling: str) -> pl.Expr:
        changed = spellings.filter(pl.col(spelling) != pl.col("symbol"))
        return (
            symbol.replace(dict(zip(changed["symbol"], changed[spelling], strict=True)))
            if len(changed)
            else symbol
        )

    if isinstance(venue, str):
        lowered = venue.lower()
        return looked_up(
            "stock" if lowered in STOCK_VENUES else "unnamed" if lowered == UNKNOWN_VENUE else "crypto"
        )
    return (
        pl.when(venue.str.to_lowercase().is_in(STOCK_VENUES))
        .then(looked_up("stock"))
        .when((venue.is_null() | (venue.str.to_lowercase() == UNKNOWN_VENUE)).fill_null(True))
        .then(looked_up("unnamed"))
        .otherwise(looked_up("crypto"))
    )


def canonical_symbol_of(symbol: str, venue: str | None = None) -> str:
    """One symbol's canonical spelling on `venue` (None: a venue nobody named): `nuls_btc` → `NULS/BTC`."""
    return pl.select(canonical_symbol(pl.lit(symbol), pl.lit(venue, dtype=pl.String))).item()
