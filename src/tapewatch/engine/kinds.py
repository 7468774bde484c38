"""The record kinds the engines run detectors on, and what makes a row of each undecidable.

The streaming engine is the same machine for every kind (hold back the newest
millisecond, set aside late and malformed rows, keep a tail per symbol); only
the columns and the validity rule (`tapewatch.validity`) differ, so they live here, one entry per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import polars as pl

from tapewatch.detect.base import Detector
from tapewatch.io.derive import EXECUTION
from tapewatch.records import BOOK_EVENT_SCHEMA, ORDER_SCHEMA, TRADE_SCHEMA
from tapewatch.validity import Problems, book_event_problems, first_reason, order_problems, trade_problems

MALFORMED = "malformed"
"""The placeholder reason a malformed row carries until `RecordKind.explain` names its problem."""


@dataclass(frozen=True)
class RecordKind:
    """A kind of input rows a stream can carry: its columns and the validity rule of its rows."""

    name: str
    noun: str
    """One row, in the words of set-aside reasons ("trade", "order event", …)."""
    schema: dict[str, pl.DataType]
    rule: Callable[[], Problems]
    """Builds the kind's checks (`tapewatch.validity`), the same files and every other source apply."""
    malformed_reason: str = MALFORMED

    @property
    def problems(self) -> Problems:
        """The checks as of now: built per use, as their future-time bound moves with the clock."""
        return self.rule()

    @property
    def malformed(self) -> pl.Expr:
        """True where a row cannot be decided (never null); cheap, so every row can be tested."""
        return pl.any_horizontal(is_bad for is_bad, _ in self.problems)

    def explain(self, rows: pl.DataFrame, column: str) -> pl.DataFrame:
        """Replace the `MALFORMED` placeholder in `column` by each row's first failed check.

        Called on the set-aside rows only: wording every row's reason would cost the
        hot path several times what the yes/no test does.
        """
        named = pl.when(pl.col(column) == MALFORMED).then(first_reason(self.problems))
        return rows.with_columns(named.otherwise(pl.col(column)).alias(column))

    def serves(self, detector: Detector) -> bool:
        """Whether a stream of this kind feeds `detector` (bar detectors get candles built from trades)."""
        return detector.needs == self.name or (self.name == "trades" and detector.needs == "bars")


TRADES = RecordKind("trades", "trade", TRADE_SCHEMA, partial(trade_problems, TRADE_SCHEMA))
ORDERS = RecordKind("orders", "order event", ORDER_SCHEMA, partial(order_problems, ORDER_SCHEMA, EXECUTION))
"""Order events with the executions merged in from the trades (`io.derive.order_events`)."""
BOOK = RecordKind("book", "book event", BOOK_EVENT_SCHEMA, partial(book_event_problems, BOOK_EVENT_SCHEMA))
KINDS = {kind.name: kind for kind in (TRADES, ORDERS, BOOK)}
