"""`stream --replay` of trades larger than memory: spilled to disk by hour, streamed back hour by hour.

A replay goes through the whole market in time order, so the input is partitioned by time, not by
symbol (`tapewatch.io.spill.by_time`); hour after hour is read back, de-duplicated and sorted, and the
streaming engine keeps only its detectors' lookback. The trades come out in the order of a whole read,
so the alerts are the same. Every row is accounted for as in a whole read: refused rows go to the
caller's dead letters file by file, and the duplicates each hour's read-back removes are counted in the
tally as they are removed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from tapewatch.config import Settings
from tapewatch.engine.kinds import KINDS
from tapewatch.errors import InputError
from tapewatch.io.readers import Kind, ReadTally
from tapewatch.io.spill import Spill, by_time, spill_files, spill_folder

AUTO = "auto"
"""`--kind auto`: replay whatever kind the files hold."""
SPAN = timedelta(hours=1)
"""Time partitions: an hour of the whole market is what one read-back holds."""
REPLAY_KINDS: tuple[Kind, ...] = ("trades", "orders", "book")
"""What a replay streams. Candles are not replayed: the streaming engine builds the bar detectors' candles
from trades, so a replay reads candle files only to count them as not replayed (`pipeline.stream.READ`)."""


@dataclass
class SpilledReplay:
    """Trades spilled by hour, ready to stream; `close` deletes the spill."""

    spill: Spill
    folder: tempfile.TemporaryDirectory
    trades: int
    hours: int
    tally: ReadTally
    """The read's counts; `frames` adds the duplicates it removes (and takes them off the trades kept)."""

    def frames(self) -> Iterator[pl.DataFrame]:
        """Each hour's trades, de-duplicated and sorted as a whole read sorts them, in time order."""
        for number in self.spill.numbers():
            trades, removed = self.spill.read(number)["trades"]
            self.tally.duplicates_removed += removed
            self.tally.records["trades"] -= removed
            yield trades

    def close(self) -> None:
        """Delete the spilled files."""
        self.folder.cleanup()


def check_replay_kind(kind: str) -> None:
    """`--kind`: auto (what the files hold) or one of the record kinds a stream carries."""
    if kind not in (AUTO, *KINDS):
        raise InputError(f"--kind '{kind}': unknown; expected one of {AUTO}, {', '.join(KINDS)}")


def spill_replay(
    inputs: Sequence[str],
    settings: Settings,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    kind: str = "auto",
    kinds: Collection[Kind] = REPLAY_KINDS,
    on_rejected: Callable[[pl.DataFrame], None] | None = None,
) -> SpilledReplay:
    """Read the inputs' trades into an hourly spill; other kinds are refused, since rebuilding order
    events or a book needs them whole. `kinds` are the records the caller reads (a file of another
    kind is refused, as `read_inputs` refuses it); each file's refused rows go to `on_rejected` as it
    is read, so none are held; a file that cannot be read is set aside (`tally.failed`), as `detect`
    sets it aside."""
    check_replay_kind(kind)
    if kind not in ("auto", "trades"):
        raise InputError(
            f"--kind {kind}: these files need more than [batch] memory_gib ({settings.batch.memory_gib:g} GiB); "
            "a replay that large streams trades only (--kind trades), or raise memory_gib"
        )
    folder = spill_folder("tapewatch-replay-", settings.batch.spill_dir)
    try:
        spill = Spill(Path(folder.name), by_time(SPAN))
        tally = spill_files(
            inputs, spill, fmt=fmt, venue=venue, kinds=kinds, on_rejected=on_rejected, set_aside=True
        )
        others = {noun: tally.records[noun] for noun in ("orders", "book") if tally.records[noun]}
        if others and kind == "auto":
            raise InputError(
                "--replay: the files hold "
                + " and ".join(f"{count:,} {noun} rows" for noun, count in others.items())
                + f" and need more than [batch] memory_gib ({settings.batch.memory_gib:g} GiB); a replay that"
                " large streams trades only: add --kind trades, or raise memory_gib"
            )
    except BaseException:
        folder.cleanup()
        raise
    return SpilledReplay(
        spill=spill,
        folder=folder,
        trades=tally.records["trades"],
        hours=len(spill.numbers()),
        tally=tally,
    )
