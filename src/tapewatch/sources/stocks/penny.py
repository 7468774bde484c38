"""The penny-stock filter: which listed stocks are cheap (and thin, and small) enough to be pump targets.

Pump-and-dump schemes favour stocks that cost little, trade little and are worth
little, because a small amount of money moves them. The filter is a pure function
over a frame of instruments with `last_price`, `avg_volume` and `market_cap`:

- `penny`: last price under `max_price`, and — when those bounds are set —
  average volume at least `min_avg_volume` and market cap at most `max_market_cap`;
- `other`: a known fact rules it out (price at or over the bound, …);
- `unknown`: nothing rules it out but a fact the decision needs is missing
  (no price yet, or no volume/market cap while that bound is set). Unknown is
  never treated as penny: the caller learns the facts first (Yahoo quotes).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tapewatch.config import StocksSettings

PENNY, OTHER, UNKNOWN = "penny", "other", "unknown"


@dataclass(frozen=True)
class PennyBounds:
    """The filter's thresholds; 0 for the optional bounds means "no bound"."""

    max_price: float = 5.0
    min_avg_volume: float = 0.0
    max_market_cap: float = 0.0

    @classmethod
    def from_settings(cls, settings: StocksSettings, max_price: float | None = None) -> PennyBounds:
        """Bounds from the [stocks] section, with --max-price taking precedence."""
        return cls(
            max_price=settings.penny_max_price if max_price is None else max_price,
            min_avg_volume=settings.min_avg_volume,
            max_market_cap=settings.max_market_cap,
        )


def classify_penny(instruments: pl.DataFrame, bounds: PennyBounds) -> pl.DataFrame:
    """Add a `penny` column: "penny", "other" or "unknown" (see the module docstring)."""
    price, volume, cap = (
        pl.col(name).cast(pl.Float64).fill_nan(None) for name in ("last_price", "avg_volume", "market_cap")
    )
    known_price = (price > 0).fill_null(False)  # a zero or negative price is a data error, not a fact
    rules_out = known_price & (price >= bounds.max_price)
    missing = ~known_price
    if bounds.min_avg_volume > 0:
        rules_out = rules_out | (volume < bounds.min_avg_volume).fill_null(False)
        missing = missing | volume.is_null()
    if bounds.max_market_cap > 0:
        rules_out = rules_out | (cap > bounds.max_market_cap).fill_null(False)
        missing = missing | cap.is_null()
    status = (
        pl.when(rules_out).then(pl.lit(OTHER)).when(missing).then(pl.lit(UNKNOWN)).otherwise(pl.lit(PENNY))
    )
    return instruments.with_columns(status.alias("penny"))


def penny_stocks(instruments: pl.DataFrame, bounds: PennyBounds) -> pl.DataFrame:
    """Only the instruments the filter calls penny stocks, in their original order."""
    return classify_penny(instruments, bounds).filter(pl.col("penny") == PENNY)
