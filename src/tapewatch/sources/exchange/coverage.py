"""Which time ranges of a symbol a backfill has already fetched into the lake.

`Lake.high_water` says where a symbol's data ends, not what lies before it: a
second backfill asking for an earlier start, or a quiet hour with no trades at all,
cannot be told from a hole. The ledger keeps the ranges actually fetched (quiet ones
included), so a resumed or extended backfill asks the exchange only for what is
missing. It is a small JSON file per venue/symbol beside the lake's data
(`ROOT/_coverage/<kind>/venue=<v>/symbol=<s>.json`, in the lake's own store, so on an object
store too), replaced whole at each save; losing it costs a re-fetch (the lake drops the
duplicates), never data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from tapewatch.io.storage import Store, open_store

Span = tuple[int, int]
"""A half-open range [start, end) in epoch milliseconds."""


class Coverage:
    """The fetched ranges of one venue/symbol for one stream ("trades", or a candle interval)."""

    def __init__(self, lake: Store | Path, kind: str, venue: str, symbol: str, stream: str) -> None:
        self.store = open_store(lake) if isinstance(lake, Path) else lake
        self.key = f"_coverage/{kind}/venue={quote(venue, safe='')}/symbol={quote(symbol, safe='')}.json"
        self.stream = stream
        self.spans: list[Span] = self._load().get(stream, [])

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
        """Parts of [start, end) not fetched yet, in order."""
        gaps = []
        cursor = start
        for a, b in self.spans:
            if b <= cursor:
                continue
            if a >= end:
                break
            if a > cursor:
                gaps.append((cursor, a))
            cursor = max(cursor, b)
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def add(self, spans: Iterable[Span]) -> None:
        """Record the spans as fetched and save (once, however many spans)."""
        spans = [(a, b) for a, b in spans if b > a]
        if not spans:
            return
        merged: list[Span] = []
        for a, b in sorted([*self.spans, *spans]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.spans = merged
        self._save()

    def _save(self) -> None:
        data = self._load()
        data[self.stream] = self.spans
        self.store.write_bytes(self.key, json.dumps(data).encode("utf-8"))  # atomic in every store
