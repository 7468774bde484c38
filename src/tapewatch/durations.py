"""Durations as people write them ("3s", "5m", "1h", "1d"), shared by config, CLI and detectors."""

from __future__ import annotations

import re
from datetime import timedelta

from tapewatch.errors import InputError

_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d|w)?\s*$")


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """Parse "90", "30s", "5m", "5 min", "1h", "1d"; a bare number means seconds."""
    match = _PATTERN.match(str(text).lower())
    if not match:
        raise InputError(f"{what} '{text}': expected a number with a unit, e.g. 30s, 5m, 1h, 1d")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNITS[unit or "s"])


def polars_interval(delta: timedelta) -> str:
    """The same span in Polars' duration language ("3600s"), exact to the microsecond."""
    return f"{int(delta / timedelta(microseconds=1))}us"
