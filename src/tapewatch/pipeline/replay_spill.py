"""`stream --replay` of trades larger than memory: spilled to disk by hour, streamed back hour by hour.

A replay goes through the whole market in time order, so the input is partitioned by time, not by
symbol (`tapewatch.io.spill.by_time`); hour after hour is read back, de-duplicated and sorted, and the
streaming engine keeps only its detectors' lookback. The trades come out in the order of a whole read,
so the alerts are the same.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from tapewatch.config import Settings
from tapewatch.engine.kinds import KINDS
from tapewatch.errors import InputError
from tapewatch.io.deadletter import empty_rejected
from tapewatch.io.readers import RECORD_KINDS, Kind
from tapewatch.io.spill import Spill, by_time, spill_files, spill_folder

AUTO = "auto"
"""`--kind auto`: replay whatever kind the files hold."""
SPAN = timedelta(hours=1)
"""Time partitions: an hour of the whole market is what one read-back holds."""


@dataclass
class SpilledReplay:
    """Trades spilled by hour, ready to stream; `close` deletes the spill."""

    spill: Spill
    folder: tempfile.TemporaryDirectory
    trades: int
    hours: int
    rejected: pl.DataFrame = field(default_factory=empty_rejected)

    def frames(self) -> Iterator[pl.DataFrame]:
        """Each hour's trades, de-duplicated and sorted as a whole read sorts them, in time order."""
        for number in self.spill.numbers():
            yield self.spill.read(number)["trades"][0]

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
    kinds: Collection[Kind] = RECORD_KINDS,
) -> SpilledReplay:
    """Read the inputs' trades into an hourly spill; other kinds are refused, since rebuilding order
    events or a book needs them whole. `kinds` are the records the caller reads (a file of another
    kind is refused, as `read_inputs` refuses it)."""
    check_replay_kind(kind)
    if kind not in ("auto", "trades"):
        raise InputError(
            f"--kind {kind}: these files need more than [batch] memory_gib ({settings.batch.memory_gib:g} GiB); "
            "a replay that large streams trades only (--kind trades), or raise memory_gib"
        )
    folder = spill_folder("tapewatch-replay-", settings.batch.spill_dir)
    rejected: list[pl.DataFrame] = []
    try:
        spill = Spill(Path(folder.name), by_time(SPAN))
        tally = spill_files(inputs, spill, fmt=fmt, venue=venue, kinds=kinds, on_rejected=rejected.append)
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
        rejected=pl.concat(rejected) if rejected else empty_rejected(),
    )
