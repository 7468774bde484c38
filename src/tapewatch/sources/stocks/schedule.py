"""The live loop behind `--every`: poll intraday bars every tick, run the close job once per trading day.

Both US exchanges and the TSX close at 16:00 New York/Toronto time, so one close
job (16:15 by default, once Yahoo has the day's final bar) refreshes listings and
daily bars for every venue. Trading days are Monday to Friday; on an exchange
holiday the job runs anyway and finds nothing new, which costs a little and is
never wrong. Polls run only inside the polling hours (pre-market to after-hours).

Time comes from a `Clock`, so tests drive the loop with a fake one instead of sleeping.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tapewatch.config import StocksSettings
from tapewatch.errors import InputError


class Clock(Protocol):
    """Where the loop gets the time and waits; `SystemClock` for real, a fake one in tests."""

    def now(self) -> datetime:
        """The current time, UTC-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, UTC-aware."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        _time.sleep(max(0.0, seconds))


NEW_YORK = ZoneInfo("America/New_York")
SETTLE = timedelta(seconds=5)
"""Polls wait this long after a bar's end, so Yahoo has its final values."""
CLOCK: Clock = SystemClock()
"""The clock `ingest stocks --every` runs on (tests replace it)."""


@dataclass(frozen=True)
class Schedule:
    """When to poll and when the daily close job runs, in the market's time zone."""

    every: timedelta
    close_time: time = time(16, 15)
    poll_from: time = time(4, 0)
    poll_until: time = time(20, 0)
    market_tz: ZoneInfo = NEW_YORK

    @classmethod
    def from_settings(cls, settings: StocksSettings, every: timedelta) -> Schedule:
        """The schedule of the [stocks] section, polling every `every`."""
        if every < timedelta(seconds=1):
            raise InputError(f"--every {every.total_seconds()}s: expected at least 1s")
        return cls(
            every=every,
            close_time=clock_time(settings.close_time, "close_time"),
            poll_from=clock_time(settings.poll_from, "poll_from"),
            poll_until=clock_time(settings.poll_until, "poll_until"),
            market_tz=market_zone(settings.market_tz),
        )

    def trading_day(self, moment: datetime) -> date | None:
        """The market date at `moment` if it is a weekday, else None."""
        local = moment.astimezone(self.market_tz)
        return local.date() if local.weekday() < 5 else None

    def close_due(self, moment: datetime, last_close: date | None) -> date | None:
        """The trading day whose close job is due at `moment` (not yet run), else None."""
        day = self.trading_day(moment)
        if day is None or day == last_close:
            return None
        return day if moment.astimezone(self.market_tz).time() >= self.close_time else None

    def polling(self, moment: datetime) -> bool:
        """Whether `moment` is inside the polling hours of a trading day."""
        local = moment.astimezone(self.market_tz)
        return self.trading_day(moment) is not None and self.poll_from <= local.time() < self.poll_until

    def next_tick(self, moment: datetime) -> datetime:
        """SETTLE after the next multiple of `every` since midnight UTC: just after a bar closes."""
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        ticks = (moment - SETTLE - midnight) // self.every + 1
        return midnight + ticks * self.every + SETTLE


def market_zone(name: str) -> ZoneInfo:
    """The stocks.market_tz setting as a time zone; an unknown name is a one-line error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"stocks.market_tz '{name}': expected an IANA time zone") from None


def clock_time(text: str, what: str) -> time:
    """`16:15` → time(16, 15); anything else is a one-line error naming the setting."""
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InputError(f"stocks.{what} '{text}': expected a time like 16:15") from None


def run_live(
    schedule: Schedule,
    clock: Clock,
    poll: Callable[[datetime], object],
    close_job: Callable[[datetime], object],
    *,
    last_close: date | None = None,
    ticks: int | None = None,
) -> date | None:
    """Loop: at each tick run the close job if due, then poll if inside polling hours; then sleep.

    `last_close` is the trading day whose close job already ran (e.g. by the run
    that started the loop). Stops after `ticks` ticks when given, else runs until
    interrupted. Returns the last close job's day.
    """
    done = 0
    while ticks is None or done < ticks:
        now = clock.now()
        due = schedule.close_due(now, last_close)
        if due is not None:
            close_job(now)
            last_close = due
        if schedule.polling(now):
            poll(now)
        done += 1
        if ticks is None or done < ticks:
            moment = clock.now()
            clock.sleep((schedule.next_tick(moment) - moment).total_seconds())
    return last_close
