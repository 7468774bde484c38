"""Known gaps in a symbol's trades, as data: what the venue could not give, and what no refill repaired.

A detector deciding across missing trades decides on a partial picture: a pump's
volume baseline read over an hour with half its trades missing is too low, and a
wash pattern with a leg missing looks like none. Two kinds of gap are known, both
kept in the lake so every process (stream, API, console) reads the same ones:

- "not available": ranges a backfill could not get from the venue, held in the
  coverage ledger (`sources.exchange.coverage`) beside the ranges fetched;
- "unrepaired": trades a live refill could not recover after a reconnect
  (`ExchangeLiveSource.unrepaired`), kept here in a small JSON ledger per
  venue/symbol (`ROOT/_gaps/trades/venue=<v>/symbol=<s>.json`, same scheme as the
  coverage ledger), replaced whole at each save.

A stretch a later verified backfill fetched (coverage "done") is no longer a gap, so
an unrepaired gap disappears once an `ingest` fills it. Without a lake the ledger
lives in memory only, for the stream that found the gaps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from tapewatch.epoch import from_micros, from_millis, micros_of, millis_of
from tapewatch.io.lake import Lake
from tapewatch.records import to_iso
from tapewatch.sources.exchange.coverage import LEDGERS, Coverage, ledger_key, ledger_symbols

if TYPE_CHECKING:  # sequence imports ccxt (a second): a stream of a file must not pay for it
    from tapewatch.sources.exchange.sequence import Gap

GAPS = "_gaps"
"""The folder of the lake holding the unrepaired-gap ledgers."""
STREAM = "trades"
"""Gaps are kept for trades: the stream the detectors decide on and the one refills repair."""
State = Literal["not available", "unrepaired"]


@dataclass(frozen=True)
class KnownGap:
    """A stretch of one symbol's trades known to be missing, [start, end)."""

    start: datetime
    end: datetime
    state: State
    after_id: int | None = None  # venues with consecutive ids: the missing ids lie strictly between
    before_id: int | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any of the gap lies in [start, end]."""
        return self.start <= end and self.end > start

    def evidence(self) -> dict[str, Any]:
        """The gap as an alert's evidence and the API show it (ISO times, ids when known)."""
        shown: dict[str, Any] = {"start": to_iso(self.start), "end": to_iso(self.end), "state": self.state}
        if self.after_id is not None and self.before_id is not None:
            shown["missing_ids"] = [self.after_id + 1, self.before_id - 1]
        return shown


class GapLedger:
    """The known gaps of one lake's trades (or of this process only, without a lake).

    A stream records the gaps its live source could not repair (`record_new`) and its engine
    asks which overlap an alert's evidence window (`overlapping`); each venue/symbol's ledgers
    are read from the lake once, then kept in memory beside what was recorded since.
    """

    def __init__(self, lake: Lake | None) -> None:
        self.lake = lake
        self._unrepaired: dict[tuple[str, str], list[KnownGap]] = {}
        self._coverage: dict[tuple[str, str], Coverage] = {}
        self._taken = 0

    def record_new(self, venue: str, unrepaired: Sequence[tuple[str, Gap]]) -> None:
        """Record the gaps of a live source's `unrepaired` list not recorded yet (it only grows)."""
        for symbol, gap in unrepaired[self._taken :]:
            self.record(venue, symbol, gap)
        self._taken = max(self._taken, len(unrepaired))

    def record(self, venue: str, symbol: str, gap: Gap) -> None:
        """Keep one unrepaired gap (its bounds in epoch µs are the trades seen on either side)."""
        known = KnownGap(
            from_micros(gap.after_ts), from_micros(gap.before_ts), "unrepaired", gap.after_id, gap.before_id
        )
        if known in self._unrepaired_of(venue, symbol):
            return
        # read again first: another stream may have recorded gaps of this symbol since
        gaps = sorted({*self._load(venue, symbol), *self._unrepaired_of(venue, symbol), known}, key=_order)
        self._unrepaired[(venue, symbol)] = gaps
        if self.lake is not None:
            saved = json.dumps([_saved(g) for g in gaps]).encode("utf-8")
            self.lake.store.write_bytes(
                ledger_key(GAPS, STREAM, venue, symbol), saved
            )  # atomic in every store

    def overlapping(self, venue: str, symbol: str, start: datetime, end: datetime) -> list[KnownGap]:
        """The known gaps of venue/symbol reaching into [start, end], in time order."""
        return [gap for gap in self.gaps(venue, symbol) if gap.overlaps(start, end)]

    def evidence(self, venue: str, symbol: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`overlapping`, as an alert's `evidence["data_gaps"]` holds it (the stream engine's lookup)."""
        return [gap.evidence() for gap in self.overlapping(venue, symbol, start, end)]

    def gaps(self, venue: str, symbol: str) -> list[KnownGap]:
        """Every known gap of venue/symbol, in time order: not-available ranges and unrepaired gaps,
        less what a later backfill fetched."""
        coverage = self.coverage(venue, symbol)
        missing = [
            KnownGap(from_millis(a), from_millis(b), "not available")
            for a, b in (coverage.unavailable if coverage else [])
        ]
        for gap in self._unrepaired_of(venue, symbol):
            if coverage is None or coverage.missing(millis_of(gap.start), millis_of(gap.end) + 1):
                missing.append(gap)
        return sorted(missing, key=_order)

    def coverage(self, venue: str, symbol: str) -> Coverage | None:
        """The venue/symbol's coverage ledger of trades (None without a lake)."""
        if self.lake is None:
            return None
        key = (venue, symbol)
        if key not in self._coverage:
            self._coverage[key] = Coverage(self.lake.store, "trades", venue, symbol, STREAM)
        return self._coverage[key]

    def symbols(self) -> list[tuple[str, str]]:
        """(venue, symbol) of every ledger of trades in the lake (coverage or gaps), sorted."""
        found = {key for key, gaps in self._unrepaired.items() if gaps}
        if self.lake is not None:
            store = self.lake.store
            found |= {*ledger_symbols(store, LEDGERS, STREAM), *ledger_symbols(store, GAPS, STREAM)}
        return sorted(found)

    def _unrepaired_of(self, venue: str, symbol: str) -> list[KnownGap]:
        key = (venue, symbol)
        if key not in self._unrepaired:
            self._unrepaired[key] = self._load(venue, symbol)
        return self._unrepaired[key]

    def _load(self, venue: str, symbol: str) -> list[KnownGap]:
        saved = (
            None if self.lake is None else self.lake.store.read_bytes(ledger_key(GAPS, STREAM, venue, symbol))
        )
        if saved is None:
            return []
        try:
            return [_known(item) for item in json.loads(saved.decode("utf-8"))]
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            return []  # a damaged ledger loses the record of old gaps, never data


def _order(gap: KnownGap) -> tuple[datetime, datetime]:
    return gap.start, gap.end


def _saved(gap: KnownGap) -> dict[str, Any]:
    return {
        "start_us": micros_of(gap.start),
        "end_us": micros_of(gap.end),
        "after_id": gap.after_id,
        "before_id": gap.before_id,
    }


def _known(item: dict[str, Any]) -> KnownGap:
    after, before = item.get("after_id"), item.get("before_id")
    return KnownGap(
        from_micros(int(item["start_us"])),
        from_micros(int(item["end_us"])),
        "unrepaired",
        None if after is None else int(after),
        None if before is None else int(before),
    )
