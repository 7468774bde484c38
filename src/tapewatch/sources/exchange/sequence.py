"""One symbol's live trade sequence: repeated trades dropped, late ones counted, gaps spotted and checked.

What a gap is depends on the venue's trade ids (`capabilities.IdModel`):

- consecutive (Binance's aggregate trade ids): an id that jumps past the next one means
  trades were missed, and which ones;
- consecutive with a count (OKX): a live message stands for `count` trades ending at its
  id, so the next message starts at the last id + 1, not at the last message's id + 1;
  counting messages instead would open a false gap at every aggregated message (and a
  refill would then add its trades a second time);
- none (Bybit, Kraken, unknown venues): ids only tell repeats apart; the first trade
  after a reconnect opens a gap from the last trade seen, since what happened in between
  is unknown.

A refill is accepted only when it proves the gap closed (`unrepaired`): every missing id
where ids are consecutive, otherwise trades at (or beyond) both of the gap's ends. A
backfill of a consecutive-id venue is checked the same way as its pages come (`IdRun`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

from tapewatch.sources.exchange.capabilities import IdModel


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

    @property
    def numbered(self) -> bool:
        """Whether the missing trades are known by id."""
        return self.after_id is not None and self.before_id is not None

    def wants(self, trade_id: str | None, ts: int) -> bool:
        """Whether a trade fetched over REST belongs in this gap."""
        if self.numbered and trade_id and trade_id.isdigit():
            assert self.after_id is not None and self.before_id is not None
            return self.after_id < int(trade_id) < self.before_id
        return self.after_ts <= ts <= self.before_ts


def unrepaired(gap: Gap, fetched: Iterable[tuple[str | None, int]]) -> Gap | None:
    """What of `gap` a refill did not prove closed, or None; `fetched` is every (id, ts µs) the refill read.

    Numbered gaps need every missing id; what is left runs from the first missing id to the
    last (bounds in ids, and in time as far as the fetched trades tell). Other gaps need
    trades at or before the gap's start and at or after its end (the trades on both sides
    that were already seen): anything less may have left out the middle or an end, and the
    whole gap stands.
    """
    fetched = list(fetched)
    if gap.numbered:
        assert gap.after_id is not None and gap.before_id is not None
        first, last = gap.after_id + 1, gap.before_id - 1
        numbered = [(int(i), ts) for i, ts in fetched if i is not None and i.isdigit()]
        have = sorted({n for n, _ in numbered if first <= n <= last})
        # walked in from both ends, not listed: a day-long gap of a busy symbol spans millions of ids
        low, high = 0, len(have) - 1
        while low <= high and have[low] == first:
            first, low = first + 1, low + 1
        while high >= low and have[high] == last:
            last, high = last - 1, high - 1
        if first > last:
            return None
        earlier = [ts for n, ts in numbered if n < first]
        later = [ts for n, ts in numbered if n > last]
        return Gap(max(earlier, default=gap.after_ts), min(later, default=gap.before_ts), first - 1, last + 1)
    times = [ts for _, ts in fetched]
    if times and min(times) <= gap.after_ts and max(times) >= gap.before_ts:
        return None
    return gap


class IdRun:
    """The ids of one stretch of fetched history, checked for holes as its pages come (consecutive-id venues).

    Pages of one stretch never overlap, so only the lowest and highest (id, time) seen so
    far are kept: a new page joins on at one end, and a hole between it and them shows.
    """

    def __init__(self) -> None:
        self.low: tuple[int, int] | None = None
        self.high: tuple[int, int] | None = None

    def holes(self, trades: Iterable[tuple[str | None, int]]) -> list[tuple[int, int]]:
        """(time before, time after) around each run of ids missing among `trades` (id, time) and those before."""
        numbered = {(int(i), ts) for i, ts in trades if i is not None and i.isdigit()}
        if not numbered:
            return []
        ends = [end for end in (self.low, self.high) if end is not None]
        known = sorted(numbered | set(ends))
        checked = (self.low, self.high)  # the stretch already seen: what lies between was checked
        out = [
            (min(ta, tb), max(ta, tb))
            for (a, ta), (b, tb) in pairwise(known)
            if b > a + 1 and ((a, ta), (b, tb)) != checked
        ]
        self.low, self.high = known[0], known[-1]
        return out


class TradeSequence:
    """The trades of one symbol seen so far, as far as deduplication and gap detection need."""

    def __init__(
        self,
        memory: int,
        last_ts: int | None = None,
        last_id: int | None = None,
        ids: IdModel = IdModel.CONSECUTIVE,
    ) -> None:
        self.memory = memory
        self.ids = ids
        self.last_ts = last_ts
        self.last_id = last_id if ids is not IdModel.NONE else None
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

    def admit(self, trade_id: str | None, ts: int, count: int = 1) -> tuple[Verdict, Gap | None]:
        """Classify a live trade and move the sequence on; a gap is returned when one opens before it.

        `count` is how many trades the message stands for (ids `trade_id - count + 1` to
        `trade_id`); only venues whose ids are consecutive with a count use it.
        """
        if not self.remember(trade_id):
            return Verdict.DUPLICATE, None
        number = self._number(trade_id)
        gap = None
        if number is not None and self.last_id is not None:
            first = number - (max(count, 1) - 1 if self.ids is IdModel.COUNTED else 0)
            if number < self.last_id:
                return Verdict.LATE, None
            if first > self.last_id + 1:
                gap = Gap(self.last_ts or ts, ts, self.last_id, first)
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

    def _number(self, trade_id: str | None) -> int | None:
        """The id as a place in the symbol's sequence, where the venue's ids are one."""
        if self.ids is IdModel.NONE or trade_id is None or not trade_id.isdigit():
            return None
        return int(trade_id)
