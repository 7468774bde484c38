"""Turn the many ways files write time (epoch s/ms/µs/ns, ISO, US or European dates) into UTC µs.

Every function works on a whole column at once: inputs have millions of rows,
and the common case (integer epoch milliseconds) must cost one cast.
"""

from __future__ import annotations

import polars as pl

from tapewatch.records import TIME

NS_FROM = 10**17
"""Epoch values at or above this are nanoseconds (1e17 ns is 1973; 1e17 µs would be year 5138)."""
US_FROM = 10**14
"""Epoch values at or above this (and below NS_FROM) are microseconds; below it, milliseconds."""

ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
"""Year-first layouts: unambiguous, so a column may mix them freely."""

DATE_FAMILIES: tuple[tuple[str, ...], ...] = (
    ISO_FORMATS,
    ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S"),  # US (Yahoo, the arch data sets)
    ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"),
    ("%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S"),
)
"""Day-first and month-first are ambiguous, so one family is chosen per column, never mixed."""

SNIFF_ROWS = 1000
"""Values looked at to choose a date family; enough to meet a day above 12 in daily data."""


def epoch_to_time(values: pl.Expr) -> pl.Expr:
    """Integer epoch → UTC µs, deciding the unit per value, so files mixing ms and µs (Binance 2025) work."""
    micros = (
        pl.when(values >= NS_FROM)
        .then(values // 1000)
        .when(values >= US_FROM)
        .then(values)
        .otherwise(values * 1000)
    )
    return micros.cast(pl.Int64).cast(TIME)


def _float_epoch_to_time(values: pl.Expr) -> pl.Expr:
    """Float epoch (e.g. `1.6e12` or `1605549866174.0`) → UTC µs by the same magnitude rule."""
    scale = pl.when(values >= NS_FROM).then(0.001).when(values >= US_FROM).then(1.0).otherwise(1000.0)
    micros = (values * scale).round(0)
    in_range = values.is_finite() & (micros.abs() < 9e18)
    return pl.when(in_range).then(micros).cast(pl.Int64).cast(TIME)


def _to_utc(parsed: pl.Series) -> pl.Series:
    """Naive datetimes are taken as UTC; aware ones are converted; all end as µs UTC."""
    dtype = parsed.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        parsed = parsed.dt.replace_time_zone("UTC")
    elif isinstance(dtype, pl.Datetime):
        parsed = parsed.dt.convert_time_zone("UTC")
    elif dtype == pl.Date:
        parsed = parsed.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return parsed.cast(TIME)


def _parse_with(text: pl.Series, formats: tuple[str, ...]) -> pl.Series:
    """Parse with the first format of the family that fits each value; null where none does."""
    result = pl.Series(text.name, [None] * len(text), dtype=TIME)
    for fmt in formats:
        missing = result.is_null() & text.is_not_null()
        if not missing.any():
            break
        parsed = _to_utc(text.str.to_datetime(fmt, strict=False, time_unit="us"))
        result = result.fill_null(parsed)
    return result


def _best_family(text: pl.Series) -> tuple[str, ...]:
    """The date family that parses the most of a sample; ties go to the earlier (ISO, then US)."""
    sample = text.drop_nulls().head(SNIFF_ROWS)
    scores = [_parse_with(sample, family).is_not_null().sum() for family in DATE_FAMILIES]
    return DATE_FAMILIES[scores.index(max(scores))]


def parse_text_times(text: pl.Series) -> pl.Series:
    """Datetime strings → UTC µs with the layout that fits the column best; unparsable values → null."""
    text = text.cast(pl.String).str.strip_chars()
    return _parse_with(text, _best_family(text))


def parse_times(raw: pl.Series) -> pl.Series:
    """Any timestamp column → UTC µs (null where unparsable), trying the cheap readings first.

    Integer epochs cost one cast; floats and text are tried only for the values
    still unparsed, so a clean file never pays for the fallbacks.
    """
    if isinstance(raw.dtype, pl.Datetime) or raw.dtype == pl.Date:
        return _to_utc(raw)
    if raw.dtype.is_integer():
        return _integer_epochs(raw)
    if raw.dtype.is_float():
        return raw.to_frame("v").select(_float_epoch_to_time(pl.col("v"))).to_series().alias(raw.name)
    text = raw.cast(pl.String)
    result = _integer_epochs(text.cast(pl.Int64, strict=False))
    if result.null_count() == text.null_count():
        return result
    return _fill_from_text(result, text)


def _integer_epochs(values: pl.Series) -> pl.Series:
    """Integer epochs → UTC µs; a column entirely in milliseconds (the usual case) takes one multiply."""
    low, high = values.min(), values.max()
    if low is not None and 0 <= low and high < US_FROM:  # type: ignore[operator]
        return (values.cast(pl.Int64) * 1000).cast(TIME)
    return values.to_frame("v").select(epoch_to_time(pl.col("v"))).to_series().alias(values.name)


def _fill_from_text(result: pl.Series, text: pl.Series) -> pl.Series:
    """Fill what the integer reading missed: float epochs first, then date strings."""
    unparsed = result.is_null() & text.is_not_null()
    as_float = text.filter(unparsed).str.strip_chars().cast(pl.Float64, strict=False)
    floats = as_float.to_frame("v").select(_float_epoch_to_time(pl.col("v"))).to_series()
    leftover = floats.is_null()
    if leftover.any():
        words = text.filter(unparsed).filter(leftover)
        floats = floats.scatter(leftover.arg_true(), parse_text_times(words))
    return result.scatter(unparsed.arg_true(), floats)


INTERVAL_NAMES: dict[int, str] = {
    1: "1s",
    60: "1m",
    180: "3m",
    300: "5m",
    900: "15m",
    1800: "30m",
    3600: "1h",
    7200: "2h",
    14400: "4h",
    21600: "6h",
    28800: "8h",
    43200: "12h",
    86400: "1d",
    259200: "3d",
    604800: "1w",
}
MONTH_SECONDS = (28 * 86400, 31 * 86400)
"""A median spacing in this range is a monthly bar."""


def infer_interval(ts: pl.Series) -> str:
    """Bar interval from the median spacing of distinct timestamps (weekends and holidays do not move a median)."""
    spacing = ts.drop_nulls().unique().sort().diff().drop_nulls()
    if spacing.is_empty():
        return "unknown"
    micros = int(spacing.dt.total_microseconds().median())  # type: ignore[arg-type]
    if micros % 1_000_000:
        return f"{micros // 1000}ms"
    seconds = micros // 1_000_000
    if seconds in INTERVAL_NAMES:
        return INTERVAL_NAMES[seconds]
    if MONTH_SECONDS[0] <= seconds <= MONTH_SECONDS[1]:
        return "1mo"
    return f"{seconds}s"
