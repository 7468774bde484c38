"""Messages on the trades stream outside every partition: found, counted, dead-lettered, never left unsaid.

Workers read the trades stream partition by partition (`PREFIX.trades.<p>.>` for p below
`bus.partitions`), so a message published anywhere else on the stream — a partition number this bus
does not have (a hand-made publish, another tool), or no partition token at all — would sit there
unread while every partition reports zero lag. The worker holding partition 0 (one at a time) sweeps
for them every `SWEEP_EVERY_S`: it lists the stream's subjects, and reads each stray subject through
a durable consumer of its own, so that a message, once dead-lettered and terminated, is never reported
again (at least once across a crash, like every dead letter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api

from tapewatch.bus.subjects import BusNames

SWEEP_EVERY_S = 10.0
"""How often the holder of partition 0 looks for stray messages (listing subjects costs one request)."""
FETCH = 100
"""Stray messages fetched, dead-lettered and terminated at a time."""
IDLE_CONSUMER_S = 24 * 3600.0
"""A stray subject's consumer is deleted by the server once unused this long (its messages aged out)."""


def stray_reason(subject: str, names: BusNames) -> str | None:
    """Why a trades subject is read by no partition (None: a partition of this bus reads it)."""
    partition = names.partition_of_subject(subject)
    if partition is not None and partition < names.partitions:
        return None
    return (
        f"on partition '{stray_partition(subject)}', which this bus does not have (bus.partitions = {names.partitions}): "
        "no worker reads it"
    )


def stray_partition(subject: str) -> str:
    """The partition token a stray subject names, as given (it may not be a number)."""
    parts = subject.split(".")
    return parts[2] if len(parts) > 2 else ""


async def stray_subjects(js: JetStreamContext, names: BusNames) -> dict[str, str]:
    """Each subject of the trades stream no partition reads, with why."""
    info = await js.stream_info(names.trades_stream, subjects_filter=names.trades_wildcard)
    found = ((subject, stray_reason(subject, names)) for subject in info.state.subjects or {})
    return {subject: reason for subject, reason in found if reason is not None}


async def sweep_strays(
    js: JetStreamContext,
    names: BusNames,
    timeout_s: float,
    settle: Callable[[list[tuple[Msg, str]]], Awaitable[None]],
) -> None:
    """Hand the stray messages not terminated yet, with why each is stray, to `settle` batch by batch
    (at most `FETCH`); it counts and dead-letters them, then terminates each (`msg.term()`), so their
    consumer never delivers them again. A batch is settled before the next is fetched: a flood of strays
    is never held whole, and a crash loses at most one batch's terminations (those come again)."""
    for subject, reason in sorted((await stray_subjects(js, names)).items()):
        sub = await js.pull_subscribe(
            subject,
            durable=_durable(names, subject),
            stream=names.trades_stream,
            config=api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                inactive_threshold=IDLE_CONSUMER_S,
                description=f"Tapewatch stray messages on {subject}",
            ),
        )
        try:
            if not await _outstanding(sub):
                continue  # the usual sweep: every stray was terminated in an earlier one
            while True:
                try:
                    batch = await sub.fetch(FETCH, timeout=timeout_s)
                except (TimeoutError, NatsTimeout):
                    break  # nothing to deliver now; what is still outstanding comes in a later sweep
                await settle([(msg, reason) for msg in batch])
                if len(batch) < FETCH:
                    break  # the server had no more at hand: a further fetch would only wait out its timeout
        finally:
            await sub.unsubscribe()


async def _outstanding(sub: JetStreamContext.PullSubscription) -> bool:
    """Whether a stray consumer has messages not terminated: never delivered, or delivered to a sweep that
    died before terminating them (redelivered once their ack wait is over, and not in `num_pending`)."""
    info = await sub.consumer_info()
    return bool(info.num_pending or info.num_ack_pending)


def _durable(names: BusNames, subject: str) -> str:
    """A consumer name for one stray subject (subjects hold dots, names may not)."""
    return f"{names.consumer_prefix}_stray_{hashlib.blake2b(subject.encode(), digest_size=6).hexdigest()}"
