"""Putting normalised trades on the bus: one message per venue/symbol batch, republishing harmless.

Each venue/symbol's trades are cut into messages of at most `message_trades`
rows, only between distinct timestamps (the engine decides all trades of one
timestamp together, so they must never straddle two messages), and the messages
of one subject are published one after another, waiting for the server's
acknowledgement, so a symbol's trades reach its partition in order even when a
publish is retried. Different subjects are published concurrently. The message
id is a hash of subject and payload: the same batch published twice within the
duplicate window is stored once.

Files are read as `detect` reads them, and every row is accounted for before anything goes on the bus:
refused rows are appended to the publisher's dead-letter file as each file is read, duplicates are
counted, and a file that is not trades is refused (named) or skipped with a line (found in a folder);
the workers then account for every trade they are sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from nats.js import JetStreamContext

from tapewatch.bus.codec import encode_trades
from tapewatch.bus.connection import connect, retrying
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.topology import ensure_topology
from tapewatch.config import BusSettings, Settings
from tapewatch.io.deadletter import DeadLetterFile, check_writable
from tapewatch.io.readers import ReadTally, expand_inputs, read_inputs
from tapewatch.io.spill import partitions_for
from tapewatch.pipeline.replay_spill import spill_replay
from tapewatch.records import TRADE_SCHEMA, conform
from tapewatch.sources.replay import parse_speed, replay

MSG_ID = "Nats-Msg-Id"
CONTROL = "Tapewatch-Control"
END = "end"


@dataclass
class PublishStats:
    """What a publisher sent: for the one-line summary and the benchmark."""

    trades: int = 0
    messages: int = 0
    duplicates: int = 0
    bytes: int = 0
    partitions: set[int] = field(default_factory=set)
    seconds: float = 0.0
    read: ReadTally | None = None
    """What the files held, when files were published (`publish_files`)."""
    letters: DeadLetterFile = field(default_factory=lambda: DeadLetterFile(None))
    """The files' refused rows: counted by reason, and written to the dead-letter file when there is one."""

    def summary(self) -> str:
        rate = self.trades / self.seconds if self.seconds else 0.0
        return (
            f"published {self.trades:,} trades in {self.messages:,} messages ({self.bytes / 1e6:.1f} MB) "
            f"to {len(self.partitions)} partition(s) in {self.seconds:.2f}s ({rate:,.0f} trades/s)"
            + (f", {self.duplicates:,} duplicate message(s) dropped by the bus" if self.duplicates else "")
        )


@dataclass(frozen=True)
class Batch:
    """One message: its subject, Arrow payload and idempotency id."""

    subject: str
    payload: bytes
    rows: int

    @property
    def msg_id(self) -> str:
        return hashlib.sha256(self.subject.encode() + b"\0" + self.payload).hexdigest()[:32]


def batches(trades: pl.DataFrame, names: BusNames, message_trades: int) -> dict[str, list[Batch]]:
    """Each subject's messages, in order; a timestamp's trades always share one message.

    Vectorised over all symbols at once (one sort, one split), since a live feed hands
    over many symbols' few trades at a time.
    """
    key = ["venue", "symbol"]
    frame = (
        conform(trades, TRADE_SCHEMA)
        .filter(pl.col("symbol").is_not_null())  # no subject for it; readers never produce such rows
        .with_columns(pl.col("venue").fill_null(""))
        .sort(key + ["ts"], maintain_order=True, nulls_last=True)
    )
    row = pl.int_range(pl.len()).over(key)
    first_of_ts = pl.when(pl.col("ts").ne_missing(pl.col("ts").shift().over(key)) | (row == 0)).then(row)
    chunk = first_of_ts.forward_fill().over(key) // message_trades
    starts = (row == 0) | chunk.ne_missing(chunk.shift())
    frame = frame.with_columns(_message=starts.cum_sum())
    out: dict[str, list[Batch]] = {}
    for part in frame.partition_by("_message", maintain_order=True, include_key=False):
        subject = names.trades_subject(part["venue"][0], part["symbol"][0])
        out.setdefault(subject, []).append(Batch(subject, encode_trades(part), part.height))
    return out


class TradePublisher:
    """Publishes trade frames (any mix of symbols) and end-of-input markers to the trades stream."""

    def __init__(self, js: JetStreamContext, names: BusNames, bus: BusSettings) -> None:
        self.js, self.names, self.bus = js, names, bus
        self.stats = PublishStats()
        self._inflight = asyncio.Semaphore(bus.publish_inflight)
        self._run = hashlib.sha256()

    async def publish(self, trades: pl.DataFrame) -> None:
        """Publish every trade and wait until the server has stored (or deduplicated) each message."""
        if trades.is_empty():
            return
        started = time.perf_counter()
        per_subject = batches(trades, self.names, self.bus.message_trades)
        await asyncio.gather(*(self._in_order(messages) for messages in per_subject.values()))
        self.stats.seconds += time.perf_counter() - started

    async def end(self) -> None:
        """Mark the end of input on every partition, so workers decide what they hold (as `detect` does).

        The marker's id derives from every message published before it, so
        republishing the same input drops the markers too.
        """
        started = time.perf_counter()
        digest = self._run.hexdigest()[:24]
        await asyncio.gather(
            *(
                self._send(self.names.end_subject(p), b"", {CONTROL: END, MSG_ID: f"end-{p}-{digest}"})
                for p in range(self.names.partitions)
            )
        )
        self.stats.seconds += time.perf_counter() - started

    async def _in_order(self, messages: list[Batch]) -> None:
        for batch in messages:
            self._run.update(batch.msg_id.encode())
            duplicate = await self._send(batch.subject, batch.payload, {MSG_ID: batch.msg_id})
            self.stats.duplicates += duplicate
            if not duplicate:
                self.stats.trades += batch.rows
                self.stats.messages += 1
                self.stats.bytes += len(batch.payload)
            self.stats.partitions.add(self.names.partition_of_subject(batch.subject) or 0)

    async def _send(self, subject: str, payload: bytes, headers: dict[str, str]) -> bool:
        async with self._inflight:
            ack = await retrying(
                f"publish to {subject}",
                lambda: self.js.publish(subject, payload, headers=dict(headers)),
                self.bus,
            )
        return bool(ack.duplicate)


def replay_chunks(
    trades: pl.DataFrame | Iterable[pl.DataFrame], speed: str, batch_trades: int
) -> Iterator[pl.DataFrame]:
    """The trades in time order, as fast as possible or paced at N× real time (`--speed`).

    A chunk never ends inside a timestamp: its newest timestamp's rows wait for the
    next chunk, so the messages cut from it keep a timestamp's trades together.
    """
    carry: pl.DataFrame | None = None
    for chunk, _arrived in replay(trades, speed=parse_speed(speed), batch_trades=batch_trades):
        if carry is not None:
            chunk = pl.concat([carry, chunk])
        newest = pl.col("ts") == chunk["ts"].max()
        carry = chunk.filter(newest)
        if not (ready := chunk.filter(~newest)).is_empty():
            yield ready
    if carry is not None:
        yield carry


async def publish_frame(
    settings: Settings, url: str, chunks: Iterator[pl.DataFrame], *, end: bool = True, name: str = "publish"
) -> PublishStats:
    """Connect, make sure the streams exist, publish every chunk (then the end markers), disconnect."""
    names = BusNames.from_settings(settings.bus)
    client, js = await connect(url, settings.bus, name=f"tapewatch-{name}")
    try:
        await ensure_topology(js, names, settings.bus)
        publisher = TradePublisher(js, names, settings.bus)
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await publisher.publish(chunk)
        if end:
            await publisher.end()
        return publisher.stats
    finally:
        await client.close()


READ_KINDS = ("trades",)
"""What `bus publish` reads: the bus carries trades, so a file of candles, order events or book updates
is refused when named and skipped with its reason when a folder or glob holds it, never read unsaid."""


def publish_files(
    settings: Settings,
    url: str,
    inputs: Sequence[str],
    *,
    speed: str = "max",
    fmt: str = "auto",
    venue: str | None = None,
    end: bool = True,
    dead_letter: Path | None = None,
) -> PublishStats:
    """Read trade files (as `detect` does) and replay them onto the bus: `tapewatch bus publish`.

    Refused rows go to `dead_letter` as each file is read, a file that cannot be read is set aside
    (`read.failed`) and the rest published; the stats' `read` says what the files held, so rows read =
    trades published + rows refused + duplicates removed + blank lines."""
    parse_speed(speed)  # a bad --speed is an error before any file is read
    if dead_letter is not None:
        check_writable(dead_letter)
    letters = DeadLetterFile(dead_letter)
    if partitions_for(expand_inputs(inputs), settings.batch.memory_gib) == 1:
        read = read_inputs(
            inputs, fmt=fmt, venue=venue, kinds=READ_KINDS, set_aside=True, on_rejected=letters
        )
        chunks = replay_chunks(read.trades, speed, settings.stream.max_batch_trades)
        stats = asyncio.run(publish_frame(settings, url, chunks, end=end))
        stats.read = read.tally()
    else:
        spilled = spill_replay(
            inputs, settings, fmt=fmt, venue=venue, kind="trades", kinds=READ_KINDS, on_rejected=letters
        )  # larger than memory
        try:
            chunks = replay_chunks(spilled.frames(), speed, settings.stream.max_batch_trades)
            stats = asyncio.run(publish_frame(settings, url, chunks, end=end))
            stats.read = spilled.tally  # complete now: the read-back counted its duplicates
        finally:
            spilled.close()
    stats.letters = letters
    return stats
