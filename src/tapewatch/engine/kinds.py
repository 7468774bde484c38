"""The record kinds the engines run detectors on, and what makes a row of each undecidable.

The streaming engine is the same machine for every kind (hold back the newest
millisecond, set aside late and malformed rows, keep a tail per symbol); only
the columns and the malformed test differ, so they live here, one entry per kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tapewatch.detect.base import Detector
from tapewatch.detect.spoofing_l3 import EXECUTION
from tapewatch.records import (
    BOOK_EVENT_SCHEMA,
    BOOK_EVENTS,
    ORDER_ACTIONS,
    ORDER_SCHEMA,
    TRADE_SCHEMA,
    TRADE_SIDES,
)


@dataclass(frozen=True)
class RecordKind:
    """A kind of input rows a stream can carry: its columns and its malformed-row test."""

    name: str
    noun: str
    """One row, in the words of set-aside reasons ("trade", "order event", …)."""
    schema: dict[str, pl.DataType]
    malformed: pl.Expr
    """True where a row cannot be decided (never null)."""
    malformed_reason: str

    def serves(self, detector: Detector) -> bool:
        """Whether a stream of this kind feeds `detector` (bar detectors get candles built from trades)."""
        return detector.needs == self.name or (self.name == "trades" and detector.needs == "bars")


def _missing(*names: str) -> pl.Expr:
    return pl.any_horizontal(pl.col(name).is_null() for name in names)


def _not_positive(name: str) -> pl.Expr:
    return ~(pl.col(name) > 0).fill_null(False)


def _negative(name: str) -> pl.Expr:
    return ~(pl.col(name) >= 0).fill_null(False)


def _not_in(name: str, allowed: tuple[str, ...]) -> pl.Expr:
    return ~pl.col(name).is_in(list(allowed)).fill_null(False)


TRADES = RecordKind(
    "trades",
    "trade",
    TRADE_SCHEMA,
    _missing("ts", "symbol") | _not_positive("price") | _not_positive("amount"),
    "malformed: missing timestamp/symbol or non-positive price/amount",
)
ORDERS = RecordKind(
    "orders",
    "order event",
    ORDER_SCHEMA,
    _missing("ts", "symbol", "order_id")
    | _not_positive("price")
    | _negative("amount")
    | _not_in("side", TRADE_SIDES)
    | _not_in("action", (*ORDER_ACTIONS, EXECUTION)),
    "malformed: missing timestamp/symbol/order_id, non-positive price, negative amount, "
    "or unknown side/action",
)
BOOK = RecordKind(
    "book",
    "book event",
    BOOK_EVENT_SCHEMA,
    _missing("ts", "symbol") | _not_positive("price") | _negative("amount") | _not_in("event", BOOK_EVENTS),
    "malformed: missing timestamp/symbol, non-positive price, negative amount or unknown event",
)
KINDS = {kind.name: kind for kind in (TRADES, ORDERS, BOOK)}
