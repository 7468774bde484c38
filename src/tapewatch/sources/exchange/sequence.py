"""One symbol's live trade sequence: repeated trades dropped, late ones counted, gaps spotted.

Exchanges that number trades consecutively per symbol (Binance's aggregate trade
ids) make gaps exact: an id that jumps past the next one means trades were missed,
and which ones. For venues with other ids, the first trade after a reconnect opens a
gap from the last trade seen, since what happened in between is unknown.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What to do with an incoming trade."""

    NEW = "new"
    DUPLICATE = "duplicate"  # already seen: drop
    LATE = "late"  # older than one already seen, but new: keep and count


@dataclass(frozen=True)
class Gap:
    """Trades missing between the last one seen and the one just received (times in epoch µs)."""

    after_ts: int
    before_ts: int
    after_id: int | None = None  # numbered venues: the missing ids lie strictly between
    before_id: int | None = None

    def wants(self, trade_id: str | None, ts: int) -> bool:
        """Whether a trade fetched over REST belongs in this gap."""
        if self.after_id is not None and self.before_id is not None and trade_id and trade_id.isdigit():
            return self.after_id < int(trade_id) < self.before_id
        return self.after_ts <= ts <= self.before_ts


class TradeSequence:
    """The trades of one symbol seen so far, as far as deduplication and gap detection need."""

    def __init__(self, memory: int, last_ts: int | None = None, last_id: int | None = None) -> None:
        self.memory = memory
        self.last_ts = last_ts
        self.last_id = last_id
        self.suspect = False  # the connection dropped since the last trade
        self._seen: OrderedDict[str, None] = OrderedDict()

    def remember(self, trade_id: str | None) -> bool:
        """Note an id as seen; False if it already was (the trade is a repeat)."""
        if trade_id is None:
            return True
        if trade_id in self._seen:
            return False
        self._seen[trade_id] = None
        if len(self._seen) > self.memory:
            self._seen.popitem(last=False)
        return True

    def admit(self, trade_id: str | None, ts: int) -> tuple[Verdict, Gap | None]:
        """Classify a live trade and move the sequence on; a gap is returned when one opens before it."""
        if not self.remember(trade_id):
            return Verdict.DUPLICATE, None
        number = int(trade_id) if trade_id is not None and trade_id.isdigit() else None
        gap = None
        if number is not None and self.last_id is not None:
            if number < self.last_id:
                return Verdict.LATE, None
            if number > self.last_id + 1:
                gap = Gap(self.last_ts or ts, ts, self.last_id, number)
        elif self.last_ts is not None:
            if ts < self.last_ts:
                return Verdict.LATE, None
            if self.suspect and number is None:
                gap = Gap(self.last_ts, ts)
        self.suspect = False
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if number is not None:
            self.last_id = number if self.last_id is None else max(self.last_id, number)
        return Verdict.NEW, gap
