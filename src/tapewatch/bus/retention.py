"""How long the trades stream must keep trades, and why: the history a worker taking a partition replays.

A worker that takes a partition over rebuilds its engine by replaying the
partition's retained trades (see `partition`). For the rebuilt state to be the
one an uninterrupted run has, the stream must still hold, behind the checkpoint:
- each detector's `lookback` (a bar detector's covers the candles it reads), and
- its follow-up horizon on top: an alert raised that long before the checkpoint
  still has its follow-up open, and re-raising it reads `lookback` before it.
`RETENTION_MARGIN` is added for a worker running behind the stream's head (the
stream keeps by arrival time, the detectors read by trade time). Detectors that
read orders or book events are not fed by the bus (it carries trades) and need
nothing from it.

The retention is only ever raised: workers with other detectors or settings
share one stream, and one lowering what another needs would throw away its
history (and two would rewrite the stream back and forth). Lowering it is an
operator's act (`nats stream edit`), never a side effect of starting a process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.kinds import TRADES

RETENTION_MARGIN = timedelta(hours=1)
"""Slack beyond the detectors' need: a worker this far behind the head still rebuilds exactly."""


@dataclass(frozen=True)
class Retention:
    """What the detectors of a worker need kept, and what the trades stream should keep for them."""

    needed: timedelta
    """The longest lookback + follow-up horizon of the detectors fed by trades (0: none)."""
    reason: str
    """Which detector sets `needed`, in words (for the log and `bus status`)."""
    configured: timedelta
    """`bus.trades_max_age_h`: a floor the operator asked for."""

    @property
    def target(self) -> timedelta:
        """The retention to ask for: the need plus the margin, or the configured one when longer."""
        return max(self.configured, self.needed + RETENTION_MARGIN if self.needed else timedelta(0))

    @property
    def needed_s(self) -> float:
        return self.needed.total_seconds()


def configured_only(settings: Settings) -> Retention:
    """The retention of a process that runs no detectors (publisher, sink): the configured one."""
    return Retention(timedelta(0), "no detectors in this process", _configured(settings))


def needed_retention(settings: Settings, detectors: Sequence[str] | None = None) -> Retention:
    """The retention the named detectors (None: the defaults) need, from their settings."""
    needs = []
    for detector in build_detectors(settings, detectors):
        if not TRADES.serves(detector):
            continue  # orders/book detectors: the bus does not feed them
        horizon = detector.followup_horizon()
        why = f"{detector.name} reads {human(detector.lookback)} back"
        if horizon > timedelta(0):
            why += f" + {human(horizon)} of follow-up"
        needs.append((detector.lookback + horizon, why))
    if not needs:
        return configured_only(settings)
    needed, reason = max(needs, key=lambda need: need[0])
    return Retention(needed, reason, _configured(settings))


def human(span: timedelta | float) -> str:
    """A duration as an operator reads it: `4 d 7 h`, `13 h 1 min`, `45 s`."""
    seconds = round(span.total_seconds() if isinstance(span, timedelta) else span)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{value} {unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) or "0 s"


def _configured(settings: Settings) -> timedelta:
    return timedelta(hours=settings.bus.trades_max_age_h)
