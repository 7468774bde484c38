"""Turn the many ways files write time (epoch s/ms/µs/ns, ISO, US or European dates) into UTC µs.

Every function works on a whole column at once: inputs have millions of rows,
and the common case (integer epoch milliseconds) must cost one cast.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from tapewatch.records import TIME

NS_FROM = 10**17
"""Epoch values at or above this are nanoseconds (1e17 ns is 1973; 1e17 µs would be year 5138)."""
US_FROM = 10**14
"""Epoch values at or above this (and below NS_FROM) are microseconds; below it, milliseconds."""
SECONDS = (10**9, 10**11)
"""A column whose median epoch lies in this range is in seconds: as seconds that is 2001-09-09 to
5138, as milliseconds 1970-01-12 to 1973-03-03, when nothing Tapewatch reads happened. The unit is
decided per column, not per value, because a value alone cannot tell 1.7e9 s from 1.7e9 ms."""

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


class ParsedTimes(NamedTuple):
    """A timestamp column read as UTC µs, and whether its epochs were taken as seconds (worth saying)."""

    values: pl.Series
    seconds: bool


def _in_seconds(values: pl.Series) -> bool:
    """Whether a numeric epoch column is in seconds (its median within `SECONDS`).

    The usual column (ms or finer, every value at or above 1e11) is told by its minimum alone.
    """
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
    low = values.min()
    if low is None or low >= SECONDS[1]:  # type: ignore[operator]
        return False
    median = values.median()
    return median is not None and SECONDS[0] <= median < SECONDS[1]  # type: ignore[operator]


def epoch_to_time(values: pl.Expr, seconds: bool = False) -> pl.Expr:
    """Integer epoch → UTC µs, deciding the unit per value, so files mixing ms and µs (Binance 2025) work.

    In a `seconds` column, values below 1e11 in magnitude are seconds; larger ones keep the per-value rule.
    """
    micros = (
        pl.when(values >= NS_FROM)
        .then(values // 1000)
        .when(values >= US_FROM)
        .then(values)
        .when(pl.lit(seconds) & (values.abs() < SECONDS[1]))
        .then(values * 1_000_000)
        .otherwise(values * 1000)
    )
    return micros.cast(pl.Int64).cast(TIME)


def _float_epoch_to_time(values: pl.Expr, seconds: bool = False) -> pl.Expr:
    """Float epoch (e.g. `1.6e12` or `1605549866174.0`) → UTC µs by the same rules; seconds keep
    their fraction (to the µs)."""
    scale = (
        pl.when(values >= NS_FROM)
        .then(0.001)
        .when(values >= US_FROM)
        .then(1.0)
        .when(pl.lit(seconds) & (values.abs() < SECONDS[1]))
        .then(1e6)
        .otherwise(1000.0)
    )
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


def parse_times(raw: pl.Series) -> ParsedTimes:
    """Any timestamp column → UTC µs (null where unparsable), trying the cheap readings first.

    Integer epochs cost one cast; floats and text are tried only for the values
    still unparsed, so a clean file never pays for the fallbacks. Epochs are taken
    as seconds when the column's bulk is (`SECONDS`), decided on its integers, else its floats.
    """
    if isinstance(raw.dtype, pl.Datetime) or raw.dtype == pl.Date:
        return ParsedTimes(_to_utc(raw), False)
    if raw.dtype.is_integer():
        seconds = _in_seconds(raw)
        return ParsedTimes(_integer_epochs(raw, seconds), seconds)
    if raw.dtype.is_float():
        seconds = _in_seconds(raw)
        return ParsedTimes(_float_epochs(raw, seconds).alias(raw.name), seconds)
    text = raw.cast(pl.String)
    integers = text.cast(pl.Int64, strict=False)
    seconds = _in_seconds(integers)
    result = _integer_epochs(integers, seconds)
    if result.null_count() == text.null_count():
        return ParsedTimes(result, seconds)
    return _fill_from_text(result, text, seconds if integers.null_count() < len(integers) else None)


def _integer_epochs(values: pl.Series, seconds: bool) -> pl.Series:
    """Integer epochs → UTC µs; a column entirely in milliseconds (the usual case) takes one multiply."""
    low, high = values.min(), values.max()
    if not seconds and low is not None and 0 <= low and high < US_FROM:  # type: ignore[operator]
        return (values.cast(pl.Int64) * 1000).cast(TIME)
    return values.to_frame("v").select(epoch_to_time(pl.col("v"), seconds)).to_series().alias(values.name)


def _float_epochs(values: pl.Series, seconds: bool) -> pl.Series:
    """Float epochs → UTC µs (null where not finite or out of range)."""
    return values.to_frame("v").select(_float_epoch_to_time(pl.col("v"), seconds)).to_series()


def _fill_from_text(result: pl.Series, text: pl.Series, seconds: bool | None) -> ParsedTimes:
    """Fill what the integer reading missed: float epochs first, then date strings.

    `seconds` is None when no value was an integer: the floats then decide the unit.
    """
    unparsed = result.is_null() & text.is_not_null()
    as_float = text.filter(unparsed).str.strip_chars().cast(pl.Float64, strict=False)
    if seconds is None:
        seconds = _in_seconds(as_float)
    floats = _float_epochs(as_float, seconds)
    leftover = floats.is_null()
    if leftover.any():
        words = text.filter(unparsed).filter(leftover)
        floats = floats.scatter(leftover.arg_true(), parse_text_times(words))
    return ParsedTimes(result.scatter(unparsed.arg_true(), floats), seconds)


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
