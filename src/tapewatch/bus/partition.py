"""One partition in one worker: take its durable consumer, rebuild the engine, then process live.

Resume, exactly:

1. **Checkpoint = the durable consumer's ack floor.** A trade message is acked only
   when all its trades are *decided* by the engine (not held back as the newest
   millisecond) and every alert and follow-up emitted up to then is confirmed by the
   alerts stream. So every stream sequence ≤ the ack floor has had all its effects
   published.
2. **Taking a partition** (start, rebalance, a crashed owner's lease expiring): read
   the floor, delete the durable consumer and create it again delivering from
   floor + 1. Deliveries then come in stream order from the checkpoint (a consumer
   left alone would redeliver its unacked messages only after `ack_wait`, behind
   newer ones), and a stale owner's pull requests die with the old consumer.
3. **Restore** the partition's engine checkpoint when there is one (see
   `checkpoints`: a snapshot taken by an owner with the stream sequence S of the
   last message in it), else start from a fresh engine (S = 0).
4. **Rebuild**: replay the partition's messages after S up to the floor through
   an ephemeral consumer (nothing acked), pushing into the engine and throwing its
   output away — all of it was published before the floor. The engine ends in the
   state it had at the floor: tails, candles, cooldowns, open follow-ups. Without a
   checkpoint this replays the whole retention, which the workers keep at least as
   long as their detectors' lookback and follow-up (`retention`), so the state is
   the one an uninterrupted run has. Steps during the rebuild use arrival time 0 and
   clock 0, so a millisecond cut by a step boundary is held back, never split. A
   checkpoint ahead of the floor (S > floor: its owner pushed messages it had not
   acked yet) needs no replay.
5. **Live**: everything after the floor is delivered and published again. Messages
   up to S are already in a restored engine: they are tracked for their acks, never
   pushed twice. What the previous owner had already published is dropped by message
   id within the alerts stream's duplicate window (`alerts_dedup_window_s`), and past
   it by the store.

Checkpoints are saved every `bus.checkpoint_s` while the partition runs, between
steps, once everything the engine emitted is confirmed on the alerts stream; an
unreadable or mismatched checkpoint (other detectors) falls back to the full rebuild.

A dropped connection can lose deliveries in flight; the consumer's delivery
numbers then show a gap, and the partition goes back to step 2 (`Resync`) rather
than decide later trades without the lost ones. A lost ack only causes a
redelivery, which is recognised and acked again.

A malformed message (not Arrow, wrong columns, symbols of another partition) is
counted, set aside with its reason and terminated, so it is never redelivered and
never stops the partition. A message on the stream that no partition reads (a partition
number the bus does not have) is found by the holder of partition 0 and treated the same
(`strays`). A replay's end marker flushes the engine as the end of a
file does in `tapewatch stream`, so a replay through the bus equals `tapewatch detect`.

Stepping: a step re-reads each touched symbol's recent tail, so it costs about the
same for 10 new trades as for 10,000. When caught up, a partition steps every
`stream.batch_ms` (latency); when behind (the server says more is pending) it
gathers up to `stream.max_batch_trades` (throughput), as `tapewatch stream` does
when replaying at full speed. Decoding and engine steps run in worker threads, so
the event loop stays free to renew leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from tapewatch.bus.alert_stream import AlertPublisher
from tapewatch.bus.checkpoints import Checkpoints
from tapewatch.bus.connection import TRANSIENT, retrying
from tapewatch.bus.delivery import InOrder, Read, Resync, is_end, read_messages
from tapewatch.bus.strays import SWEEP_EVERY_S, stray_partition, sweep_strays
from tapewatch.bus.subjects import BusNames
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import Emitted, StreamEngine
from tapewatch.io.deadletter import letter, letters_frame, write_dead_letters

log = logging.getLogger("tapewatch.bus")
REBUILD_FETCH = 1000
IDLE_FETCH_S = 1.0
"""How long a fetch waits when the engine holds nothing (nothing to decide by time)."""

KEEP_SET_ASIDE = 1000
"""Malformed messages described in a worker's report; beyond that they are only counted."""

OnPublished = Callable[[int, list[Emitted]], None]
"""Called (in a thread) with a partition's alerts once they are on the bus, before the acks."""


class PartitionLost(Exception):
    """The partition was taken over (its consumer replaced) or its lease ran out."""


@dataclass
class PartitionStats:
    """What one worker did, summed over its partitions; the worker's report reads it."""

    messages: int = 0
    trades: int = 0
    alerts: int = 0
    updates: int = 0
    rebuilt_trades: int = 0
    checkpoints_saved: int = 0
    checkpoints_restored: int = 0
    set_aside: Counter = field(default_factory=Counter)
    set_aside_messages: list[dict[str, Any]] = field(default_factory=list)

    def set_aside_message(self, msg: Msg, partition: int | str, reason: str) -> dict[str, Any]:
        """Count a malformed or stray message and keep its description (the latest `KEEP_SET_ASIDE` of
        them); returns the description (its dead letter's record). `partition` is the subject's token
        for a stray message, which may name no partition of this bus."""
        self.set_aside[f"message: {reason}"] += 1
        del self.set_aside_messages[: max(0, len(self.set_aside_messages) - KEEP_SET_ASIDE + 1)]
        described = {
            "subject": msg.subject,
            "partition": partition,
            "stream_seq": msg.metadata.sequence.stream,
            "bytes": len(msg.data),
        }
        self.set_aside_messages.append({"reason": reason, **described})
        return described


@dataclass
class PartitionContext:
    """What every partition of a worker shares."""

    js: JetStreamContext
    names: BusNames
    settings: Settings
    alerts: AlertPublisher
    stats: PartitionStats
    valid: Callable[[int], bool]
    on_published: list[OnPublished] = field(default_factory=list)
    detectors: Sequence[str] | None = None
    """The detectors' names (None: the defaults)."""
    dead_letter: Path | None = None
    """Where set-aside messages and trades are appended, in the one dead-letter format (None: counted only)."""
    checkpoints: Checkpoints | None = None
    """Where engine checkpoints are saved and restored (None: rebuild from the whole retention)."""
    hooks_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one hook call at a time


class PartitionRunner:
    """Runs one partition until cancelled or lost; see the module docstring for the guarantees."""

    def __init__(self, partition: int, ctx: PartitionContext) -> None:
        self.partition = partition
        self.ctx = ctx
        self.bus = ctx.settings.bus
        self.stream_settings = ctx.settings.stream
        self._last_sweep = float("-inf")  # partition 0 sweeps for stray messages as soon as it runs
        self._fresh_engine()

    def _fresh_engine(self) -> None:
        self.engine = StreamEngine(
            build_detectors(self.ctx.settings, self.ctx.detectors), self.stream_settings
        )
        self._unacked: deque[Read] = deque()
        self._counted: Counter = Counter()  # the engine's set-asides already added to the stats
        self._covered = 0  # messages up to this stream sequence are in a restored engine: not pushed again
        self._pushed = 0  # the last stream sequence in the engine (what a checkpoint now covers)
        self._saved = 0  # the sequence of the last checkpoint saved
        self._last_save = time.monotonic()

    async def run(self) -> None:
        """Take the partition, rebuild, process; after lost deliveries, do it all again."""
        while True:
            try:
                await self._run_once()
            except Resync as exc:
                log.warning("%s", exc)
                self._fresh_engine()
                await asyncio.sleep(self.bus.retry_initial_s)

    async def _run_once(self) -> None:
        started = time.perf_counter()
        floor = await self._take_consumer()
        restored = await self._restore()
        replayed = await self._rebuild(floor, after=restored)
        log.info(
            "partition %d: ready in %.2fs after replaying %d trades (floor %d, checkpoint %s)",
            self.partition,
            time.perf_counter() - started,
            replayed,
            floor,
            restored or "none",
        )
        sub = await self.ctx.js.pull_subscribe_bind(
            durable=self.ctx.names.durable(self.partition), stream=self.ctx.names.trades_stream
        )
        try:
            await self._consume(sub)
        finally:
            with contextlib.suppress(*TRANSIENT):
                await sub.unsubscribe()

    # -- taking over ------------------------------------------------------------------------------

    async def _take_consumer(self) -> int:
        """Recreate the durable consumer at its ack floor + 1; return the floor (0: nothing acked)."""
        js, names = self.ctx.js, self.ctx.names
        durable = names.durable(self.partition)
        try:
            info = await js.consumer_info(names.trades_stream, durable)
            # A consumer that has acked nothing since it was created at floor + 1 reports floor 0:
            # its start says where the previous floor was (else everything would be processed again).
            floor = max(info.ack_floor.stream_seq, (info.config.opt_start_seq or 1) - 1)
            await js.delete_consumer(names.trades_stream, durable)
        except NotFoundError:
            floor = 0
        await js.add_consumer(
            names.trades_stream,
            api.ConsumerConfig(
                name=durable,
                durable_name=durable,
                filter_subject=names.partition_filter(self.partition),
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.bus.ack_wait_s,
                max_ack_pending=self._max_ack_pending,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if floor else api.DeliverPolicy.ALL,
                opt_start_seq=floor + 1 if floor else None,
                description=f"Tapewatch partition {self.partition}",
            ),
        )
        return floor

    @property
    def _max_ack_pending(self) -> int:
        return max(1000, 8 * self.bus.fetch_batch)

    async def _restore(self) -> int:
        """Load the partition's checkpoint into the engine; the sequence it covers (0: none, or unusable)."""
        if self.ctx.checkpoints is None:
            return 0
        try:
            saved = await self.ctx.checkpoints.load(self.partition)
            state = (await self.ctx.js.stream_info(self.ctx.names.trades_stream)).state
        except TRANSIENT as exc:
            log.warning("partition %d: checkpoint not read (%s); rebuilding instead", self.partition, exc)
            return 0
        if saved is None or saved.data is None:
            return 0
        if not state.first_seq - 1 <= saved.seq <= state.last_seq:
            # Past the end: of an earlier stream of the same name. Before the start: what came
            # after it may have aged out, so replaying from it could skip trades.
            log.warning(
                "partition %d: checkpoint of seq %d is outside the stream's %d..%d; rebuilding instead",
                self.partition,
                saved.seq,
                state.first_seq,
                state.last_seq,
            )
            return 0
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.engine.restore, saved.data)
        except Exception as exc:  # noqa: BLE001 — any unusable checkpoint means the same: rebuild in full
            log.warning("partition %d: checkpoint not restored (%s); rebuilding instead", self.partition, exc)
            self._fresh_engine()
            return 0
        self._covered = self._pushed = self._saved = saved.seq
        self._counted = self.engine.stats.set_aside.copy()  # counted (and written) when they first came
        self.engine.set_aside.clear()
        self.ctx.stats.checkpoints_restored += 1
        log.info(
            "partition %d: restored the checkpoint of seq %d (%.1f MB, saved %.0fs ago) in %.2fs",
            self.partition,
            saved.seq,
            saved.size / 1e6,
            saved.age_s(),
            time.perf_counter() - started,
        )
        return saved.seq

    async def _rebuild(self, floor: int, *, after: int = 0) -> int:
        """Replay the partition's messages after `after` up to the floor into the engine, discarding
        what it emits; returns the trades replayed."""
        if floor <= after:
            return 0
        js, names = self.ctx.js, self.ctx.names
        sub = await js.pull_subscribe(
            names.partition_filter(self.partition),
            stream=names.trades_stream,
            config=api.ConsumerConfig(
                ack_policy=api.AckPolicy.NONE,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if after else api.DeliverPolicy.ALL,
                opt_start_seq=after + 1 if after else None,
                inactive_threshold=60.0,
            ),
        )
        started, rows, order = time.perf_counter(), 0, InOrder(self.partition)
        try:
            done = (await sub.consumer_info()).num_pending == 0  # e.g. a checkpoint covering all there is
            while not done:
                try:
                    msgs = await sub.fetch(REBUILD_FETCH, timeout=self.bus.request_timeout_s)
                except (TimeoutError, NatsTimeout):
                    done = (await sub.consumer_info()).num_pending == 0  # else the network: go on
                    continue
                done = msgs[-1].metadata.num_pending == 0
                before = [m for m in msgs if order.is_new(m) and m.metadata.sequence.stream <= floor]
                done = done or len(before) < len(msgs)
                rows += await asyncio.to_thread(self._replay, before)
        finally:
            with contextlib.suppress(*TRANSIENT):
                await sub.unsubscribe()
        await asyncio.to_thread(self.engine.step, time.time())  # what the old owner had decided
        self._counted = self.engine.stats.set_aside.copy()  # counted (and written) when they first came
        self.engine.set_aside.clear()
        self.ctx.stats.rebuilt_trades += rows
        self._pushed = max(self._pushed, floor)
        seconds = time.perf_counter() - started
        log.info(
            "partition %d: rebuilt from %d trades after seq %d up to seq %d in %.2fs",
            self.partition,
            rows,
            after,
            floor,
            seconds,
        )
        return rows

    def _replay(self, msgs: list[Msg]) -> int:
        """Feed already-published messages to the engine (in a thread); its output is dropped."""
        rows = 0
        for read in read_messages(msgs, self.partition, self.ctx.names.partitions):
            if read.end:
                self.engine.finish()
            elif read.trades is not None:
                self.engine.push(read.trades, 0.0)  # arrival 0 and clock 0: a split millisecond waits
                rows += read.trades.height
        if self.engine.pending >= self.stream_settings.max_batch_trades:
            self.engine.step(0.0)
        self.engine.set_aside.clear()  # counted (and written) when they first came: memory stays bounded
        return rows

    # -- live -------------------------------------------------------------------------------------

    async def _consume(self, sub: JetStreamContext.PullSubscription) -> None:
        """Fetch, push, and step: every `batch_ms` when caught up, in big batches when behind."""
        last_step = time.monotonic()
        order = InOrder(self.partition)
        while True:
            if not self.ctx.valid(self.partition):
                raise PartitionLost(f"partition {self.partition}: lease not renewed in time")
            msgs = await self._fetch(sub)
            fresh = []
            for msg in msgs:
                if order.is_new(msg):
                    fresh.append(msg)
                else:
                    await self._redelivered(msg)
            for segment in _up_to_each_end(fresh):
                reads = await asyncio.to_thread(self._ingest, segment)
                await self._dead_letters(self._count(reads))
                self._unacked.extend(reads)
                if reads[-1].end and _seq(reads[-1].msg) > self._covered:
                    await self._step(flush=True)  # the end of a replay: decide everything, as at a file's end
                    last_step = time.monotonic()
            behind = bool(msgs) and msgs[-1].metadata.num_pending > 0
            due = (time.monotonic() - last_step) * 1000 >= self.stream_settings.batch_ms
            if (
                self.engine.pending >= self.stream_settings.max_batch_trades
                or len(self._unacked) >= self._max_ack_pending // 2
                or (due and self._unacked and not behind)
            ):
                await self._step(flush=False)
                last_step = time.monotonic()
            await self._checkpoint()
            await self._sweep_strays()

    def _ingest(self, msgs: list[Msg]) -> list[Read]:
        """Decode, check and push messages' trades (in a thread: CPU work off the event loop); those a
        restored checkpoint holds already are read (for their acks) but not pushed."""
        reads = read_messages(msgs, self.partition, self.ctx.names.partitions)
        frames = [read.trades for read in reads if read.trades is not None and _seq(read.msg) > self._covered]
        if frames:
            self.engine.push(pl.concat(frames), time.time())
        if msgs:
            self._pushed = max(self._pushed, _seq(msgs[-1]))
        return reads

    async def _checkpoint(self) -> None:
        """Save the engine's state when `checkpoint_s` has passed and it holds something new.

        Called between steps, when everything the engine emitted is on the alerts stream, so the
        state is that of a run that pushed exactly the messages up to `_pushed`. A failed save is
        logged and tried again at the next interval: a checkpoint only shortens a takeover."""
        every = self.bus.checkpoint_s
        if self.ctx.checkpoints is None or every <= 0 or self._pushed <= self._saved:
            return
        if time.monotonic() - self._last_save < every:
            return
        if not self.ctx.valid(self.partition):
            raise PartitionLost(f"partition {self.partition}: lease not renewed in time")
        self._last_save = time.monotonic()
        seq, data = self._pushed, await asyncio.to_thread(self.engine.snapshot)
        try:
            await self.ctx.checkpoints.save(self.partition, seq, data)
        except TRANSIENT as exc:
            log.warning(
                "partition %d: checkpoint not saved (%s); next try in %.0fs", self.partition, exc, every
            )
            return
        self._saved = seq
        self.ctx.stats.checkpoints_saved += 1

    async def _sweep_strays(self) -> None:
        """On partition 0, every `SWEEP_EVERY_S`: count, dead-letter and then terminate the messages no
        partition reads (`strays`), so none is ignored and none is reported twice."""
        if self.partition != 0 or time.monotonic() - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = time.monotonic()
        try:
            await sweep_strays(self.ctx.js, self.ctx.names, self.bus.request_timeout_s, self._settle_strays)
        except TRANSIENT as exc:
            log.warning(
                "partition 0: the sweep for stray messages failed (%s); next in %.0fs", exc, SWEEP_EVERY_S
            )

    async def _settle_strays(self, found: list[tuple[Msg, str]]) -> None:
        """Count and dead-letter one batch of stray messages, then terminate them."""
        await self._dead_letters(
            letter("bus", reason, self.ctx.stats.set_aside_message(msg, stray_partition(msg.subject), reason))
            for msg, reason in found
        )
        for msg, _reason in found:
            await retrying("termination of a stray message", msg.term, self.bus)

    def _count(self, reads: list[Read]) -> list[dict[str, Any]]:
        """Add to the worker's counters (in the event loop: partitions' threads must not race on them);
        returns the dead letters of the messages set aside."""
        letters = []
        for read in reads:
            if read.reason is not None:
                described = self.ctx.stats.set_aside_message(read.msg, self.partition, read.reason)
                letters.append(letter("bus", read.reason, described))
            elif read.trades is not None:
                self.ctx.stats.messages += 1
                self.ctx.stats.trades += read.trades.height
        return letters

    async def _dead_letters(self, letters: Iterable[dict[str, Any]]) -> None:
        """Append set-aside messages and trades to the worker's dead-letter file, when it has one.

        Written when set aside, before the messages are acked: a message processed again after a
        takeover or a lost ack is written again (at least once, like the alerts). A file that cannot
        be written is logged and counted, never a reason to stop the partition (the rows are counted
        in the report either way)."""
        if self.ctx.dead_letter is None:
            return  # counted only: nothing to encode
        frame = letters_frame(letters)
        if not frame.height:
            return
        try:
            await asyncio.to_thread(write_dead_letters, frame, self.ctx.dead_letter, append=True)
        except OSError as exc:
            self.ctx.stats.set_aside[f"dead letters not written ({type(exc).__name__})"] += frame.height
            log.warning(
                "partition %d: cannot write dead letters to %s: %s", self.partition, self.ctx.dead_letter, exc
            )

    async def _redelivered(self, msg: Msg) -> None:
        """A message seen before: still awaiting its ack (it will get it), or acked already (ack lost)."""
        seq = msg.metadata.sequence.stream
        if not any(read.msg.metadata.sequence.stream == seq for read in self._unacked):
            await retrying(f"ack of partition {self.partition}", msg.ack, self.bus)

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        wait = self.stream_settings.batch_ms / 1000 if self.engine.pending else IDLE_FETCH_S
        try:
            return await sub.fetch(self.bus.fetch_batch, timeout=max(wait, 0.05))
        except (TimeoutError, NatsTimeout):
            return []
        except NotFoundError as exc:
            raise PartitionLost(f"partition {self.partition}: consumer replaced ({exc})") from None
        except TRANSIENT as exc:
            log.warning("partition %d: fetch failed (%s); retrying", self.partition, exc)
            await asyncio.sleep(self.bus.retry_initial_s)
            return []

    async def _step(self, *, flush: bool) -> None:
        """Decide what is ready, publish the alerts, then ack every message whose effects are out."""
        emitted = await asyncio.to_thread(self.engine.step, time.time(), flush=flush)
        self.ctx.stats.set_aside.update(self.engine.stats.set_aside - self._counted)
        self._counted = self.engine.stats.set_aside.copy()
        await self._dead_letters(
            letter("bus", entry["reason"], entry["record"]) for entry in self.engine.set_aside
        )
        self.engine.set_aside.clear()  # counted above and written: memory is not held by bad rows
        if emitted:
            if not self.ctx.valid(self.partition):
                raise PartitionLost(f"partition {self.partition}: lease not renewed in time")
            await self.ctx.alerts.publish(emitted)
            self.ctx.stats.alerts += sum(not item.update for item in emitted)
            self.ctx.stats.updates += sum(item.update for item in emitted)
            async with self.ctx.hooks_lock:
                for hook in self.ctx.on_published:
                    await asyncio.to_thread(hook, self.partition, emitted)
        await self._ack_decided()

    async def _ack_decided(self) -> None:
        """Ack in delivery order up to the first message the engine still holds back."""
        everything = self.engine.pending == 0
        until = self.engine.decided_until
        while self._unacked and (everything or self._unacked[0].decided(until)):
            head = self._unacked.popleft()
            await retrying(f"ack of partition {self.partition}", head.settle, self.bus)


def _seq(msg: Msg) -> int:
    return msg.metadata.sequence.stream


def _up_to_each_end(msgs: list[Msg]) -> list[list[Msg]]:
    """The messages cut after each end marker, so what follows a marker is pushed after its flush."""
    segments: list[list[Msg]] = [[]]
    for msg in msgs:
        segments[-1].append(msg)
        if is_end(msg):
            segments.append([])
    return [segment for segment in segments if segment]
