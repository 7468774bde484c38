"""Which time ranges of a symbol a backfill has already fetched into the lake.

`Lake.high_water` says where a symbol's data ends, not what lies before it: a
second backfill asking for an earlier start, or a quiet hour with no trades at all,
cannot be told from a hole. The ledger keeps the ranges actually fetched (quiet ones
included), so a resumed or extended backfill asks the exchange only for what is
missing. It is a small JSON file per venue/symbol beside the lake's data
(`ROOT/_coverage/<kind>/venue=<v>/symbol=<s>.json`, in the lake's own store, so on an object
store too), replaced whole at each save; losing it costs a re-fetch (the lake drops the
duplicates), never data.

A range the venue cannot give (it keeps only recent trades, or its history ends) is a
second state, "not available", kept beside the fetched ranges: it is not done (a later
run asks again, and the summary reports it), and it is not silently missing either.
A range fetched later stops being "not available".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from tapewatch.io.storage import Store, open_store

Span = tuple[int, int]
"""A half-open range [start, end) in epoch milliseconds."""
LEDGERS = "_coverage"
"""The folder of the lake holding the coverage ledgers."""


def ledger_key(folder: str, kind: str, venue: str, symbol: str) -> str:
    """Where one venue/symbol's small JSON ledger lives in a lake (also the gap ledger's scheme)."""
    return f"{folder}/{kind}/venue={quote(venue, safe='')}/symbol={quote(symbol, safe='')}.json"


def ledger_symbols(store: Store, folder: str, kind: str) -> list[tuple[str, str]]:
    """(venue, symbol) of every ledger of `kind` in a lake, sorted: what a data-quality view lists."""
    found = []
    for key in store.glob(f"{folder}/{kind}/venue=*/symbol=*.json"):
        venue, symbol = key.removesuffix(".json").split("/")[-2:]
        found.append((unquote(venue.removeprefix("venue=")), unquote(symbol.removeprefix("symbol="))))
    return sorted(found)


class Coverage:
    """The fetched ranges of one venue/symbol for one stream ("trades", or a candle interval)."""

    def __init__(self, lake: Store | Path, kind: str, venue: str, symbol: str, stream: str) -> None:
        self.store = open_store(lake) if isinstance(lake, Path) else lake
        self.key = ledger_key(LEDGERS, kind, venue, symbol)
        self.stream = stream
        saved = self._load()
        self.spans: list[Span] = saved.get(stream, [])
        self.unavailable: list[Span] = saved.get(self._unavailable_key, [])

    @property
    def _unavailable_key(self) -> str:
        return f"{self.stream}/not-available"

    def _load(self) -> dict[str, list[Span]]:
        saved = self.store.read_bytes(self.key)
        if saved is None:
            return {}
        try:
            data = json.loads(saved.decode("utf-8"))
            return {key: [(int(a), int(b)) for a, b in spans] for key, spans in data.items()}
        except (ValueError, TypeError, UnicodeDecodeError):
            return {}  # a damaged ledger only means fetching again

    def missing(self, start: int, end: int) -> list[Span]:
        """Parts of [start, end) not fetched yet, in order (ranges not available included: they are asked again)."""
        return _subtract([(start, end)], self.spans)

    def not_available(self, start: int, end: int) -> list[Span]:
        """Parts of [start, end) the venue could not give, in order."""
        return _subtract([(start, end)], _subtract([(start, end)], self.unavailable))

    def add(self, spans: Iterable[Span], unavailable: Iterable[Span] = ()) -> None:
        """Record spans as fetched, and others as not available from the venue; save once.

        Where the two overlap, not available wins: a hole found inside fetched pages (ids
        missing) is not fetched. A range fetched in an earlier call stays fetched.
        """
        unavailable = _merge((a, b) for a, b in unavailable if b > a)
        spans = _subtract(_merge((a, b) for a, b in spans if b > a), unavailable)
        if not spans and not unavailable:
            return
        self.spans = _merge([*self.spans, *spans])
        self.unavailable = _subtract(_merge([*self.unavailable, *unavailable]), self.spans)
        self._save()

    def _save(self) -> None:
        data = self._load()
        data[self.stream] = self.spans
        data[self._unavailable_key] = self.unavailable
        self.store.write_bytes(self.key, json.dumps(data).encode("utf-8"))  # atomic in every store


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping or touching spans joined."""
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _subtract(spans: Iterable[Span], taken: list[Span]) -> list[Span]:
    """The parts of sorted, disjoint `spans` outside the sorted, disjoint `taken`."""
    out: list[Span] = []
    for start, end in spans:
        cursor = start
        for a, b in taken:
            if b <= cursor:
                continue
            if a >= end:
                break
            if a > cursor:
                out.append((cursor, a))
            cursor = max(cursor, b)
        if cursor < end:
            out.append((cursor, end))
    return out
