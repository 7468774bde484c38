"""Moments as epoch integers and back, exactly: venues speak milliseconds, records and ledgers microseconds.

One place for the conversions, done with integer `timedelta` arithmetic rather than float
`timestamp()` (which can land a microsecond off), so a moment written as an integer and read
back is the same moment everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MS = timedelta(milliseconds=1)


def micros_of(moment: datetime) -> int:
    """Microseconds since the epoch of an aware moment (a naive one is taken as UTC)."""
    return (_aware(moment) - EPOCH) // _US


def millis_of(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down (a naive moment is taken as UTC)."""
    return (_aware(moment) - EPOCH) // _MS


def from_micros(micros: int) -> datetime:
    """The UTC moment `micros` microseconds after the epoch."""
    return EPOCH + micros * _US


def from_millis(millis: int) -> datetime:
    """The UTC moment `millis` milliseconds after the epoch."""
    return EPOCH + millis * _MS


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
