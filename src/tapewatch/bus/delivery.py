"""What a partition does with delivered messages before the engine sees them: order, decode, track.

Kept apart from the runner because it is plain, testable bookkeeping, and because
`read_messages` runs in a worker thread: decoding and checking a fetch's messages
is CPU work that must not stall the event loop that renews the leases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from nats.aio.msg import Msg

from tapewatch.bus.codec import CodecError, decode_trades
from tapewatch.bus.publish import CONTROL, END
from tapewatch.bus.subjects import partition_of
from tapewatch.engine.kinds import TRADES

Key = tuple[str, str]


class Resync(Exception):
    """Deliveries were lost on the way (a dropped connection): start again from the checkpoint."""


class InOrder:
    """Checks that a consumer's deliveries arrive with no gap, and spots redeliveries.

    JetStream numbers every delivery (`sequence.consumer`, redeliveries included),
    so a number skipped means a message was sent but never arrived — a connection
    dropped mid-fetch. Processing on would decide later trades without it and set
    it aside as out of order when it is redelivered, so the partition resyncs.
    """

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.delivery = 0
        self.stream = 0

    def is_new(self, msg: Msg) -> bool:
        """True for a message not seen before; False for a redelivery; Resync on a gap."""
        seq = msg.metadata.sequence
        if seq.consumer != self.delivery + 1:
            raise Resync(
                f"partition {self.partition}: delivery {seq.consumer} came after {self.delivery}; "
                "resuming from the checkpoint"
            )
        self.delivery = seq.consumer
        if seq.stream <= self.stream:
            return False
        self.stream = seq.stream
        return True


@dataclass
class Read:
    """One delivered message, read: its trades, or why it is malformed, or an end marker.

    `marks` holds each symbol's newest well-formed trade: the message is decided (and
    may be acked) once the engine has decided every symbol up to its mark.
    """

    msg: Msg
    trades: pl.DataFrame | None = None
    reason: str | None = None
    end: bool = False
    marks: dict[Key, datetime] = field(default_factory=dict)

    def decided(self, until: Callable[[str, str], datetime | None]) -> bool:
        """True once `until(venue, symbol)` (the engine's decision mark) covers every symbol's mark."""
        for (venue, symbol), newest in self.marks.items():
            mark = until(venue, symbol)
            if mark is None or mark < newest:
                return False
        return True

    async def settle(self) -> None:
        """Ack; a malformed message is terminated instead, so it is never redelivered."""
        await (self.msg.term() if self.reason is not None else self.msg.ack())


def is_end(msg: Msg) -> bool:
    return bool(msg.headers and msg.headers.get(CONTROL) == END)


def read_messages(msgs: list[Msg], partition: int, partitions: int) -> list[Read]:
    """Decode and check a fetch's messages (vectorised over all of them), in delivery order."""
    reads = [Read(msg, end=True) if is_end(msg) else _decode(msg) for msg in msgs]
    frames = [
        read.trades.with_columns(_i=pl.lit(i, pl.UInt32))
        for i, read in enumerate(reads)
        if read.trades is not None and read.trades.height
    ]
    if not frames:
        return reads
    every = pl.concat(frames)
    pairs = every.select("venue", "symbol").unique()
    foreign = pairs.filter(
        pl.Series([partition_of(v or "", s or "", partitions) != partition for v, s in pairs.rows()])
    )
    misrouted = every.join(foreign, on=["venue", "symbol"], nulls_equal=True)["_i"].unique()
    for i in misrouted:
        reads[i].trades = None
        reads[i].reason = f"trades of a symbol that belongs to another partition than {partition}"
    every = every.filter(~pl.col("_i").is_in(misrouted.implode()))
    newest = every.filter(~TRADES.malformed).group_by("_i", "venue", "symbol").agg(pl.col("ts").max())
    for i, venue, symbol, ts in newest.iter_rows():
        reads[i].marks[(venue, symbol)] = ts
    return reads


def _decode(msg: Msg) -> Read:
    try:
        return Read(msg, trades=decode_trades(msg.data))
    except CodecError as exc:
        return Read(msg, reason=str(exc))
