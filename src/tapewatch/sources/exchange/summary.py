"""The live source's counters as summary lines, one wording for `ingest crypto --live` and `stream --exchange`.

Both commands end with what the live source did beyond handing on trades (repeats
dropped, reconnects, gaps refilled or not, symbols halted and resumed, watches given
up), so a person reading either summary learns the same facts in the same words: a gap
that could not be repaired is named with its bounds, never folded into a total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tapewatch.sources.exchange.sequence import Gap


def live_lines(
    stats: Mapping[str, int], gaps: Sequence[tuple[str, Gap]], *, written: int | None = None
) -> list[str]:
    """Summary lines for a live source's `stats` and its `unrepaired` gaps; `written`: trades new in the lake."""
    stored = "" if written is None else f", {written:,} new in the lake"
    lines = [
        (
            f"live: {stats['trades']:,} trade(s){stored}; "
            f"{stats['duplicates']:,} duplicate(s), {stats['out_of_order']:,} out of order, "
            f"{stats['gaps_backfilled']:,} gap(s) refilled ({stats['gap_trades']:,} trades), "
            f"{stats['gaps_failed']:,} not repaired, "
            f"{stats['reconnects']:,} reconnect(s), {stats['malformed']:,} malformed"
        )
    ]
    if stats.get("symbols_halted") or stats.get("symbols_resumed") or stats.get("watches_failed"):
        lines.append(
            f"  {stats['symbols_halted']:,} symbol(s) stopped trading (unsubscribed), "
            f"{stats['symbols_resumed']:,} trading again, {stats['watches_failed']:,} watch(es) given up"
        )
    for symbol, gap in gaps:
        start, end = (iso_micros(us) for us in (gap.after_ts, gap.before_ts))
        ids = f" (ids {gap.after_id}–{gap.before_id}, exclusive)" if gap.numbered else ""
        lines.append(f"  {symbol}: trades missing (not repaired) between {start} and {end}{ids}")
    return lines


def iso_micros(micros: int) -> str:
    """Epoch µs as ISO 8601 UTC to the µs: how the live source names a gap's bounds, in logs and summaries."""
    return f"{datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros):%Y-%m-%dT%H:%M:%S.%fZ}"
