"""The --every loop on a fake clock: polls write each bar once, the close job fires once per trading day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from tapewatch.config import StocksSettings
from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.sources.stocks.catalog import INSTRUMENT_SCHEMA
from tapewatch.sources.stocks.job import IngestOptions, StocksIngest
from tapewatch.sources.stocks.schedule import Schedule, run_live
from tapewatch.sources.stocks.venues import parse_exchanges
from tapewatch.sources.stocks.yahoo import YahooClient
from unit.sources.stocks.stock_fakes import FakeClock

NEW_YORK = ZoneInfo("America/New_York")


def new_york(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, second, tzinfo=NEW_YORK).astimezone(UTC)


def test_close_job_fires_once_per_trading_day_and_polls_only_in_trading_hours():
    schedule = Schedule(every=timedelta(minutes=30))
    clock = FakeClock(new_york(7, 15, 0, 5))  # Thursday 15:00:05, on the tick grid
    closes: list[datetime] = []
    polls: list[datetime] = []
    ticks = int((new_york(11, 17, 0) - clock.now()) / schedule.every) + 1  # until Monday 17:00
    last = run_live(schedule, clock, polls.append, closes.append, ticks=ticks)
    local = [moment.astimezone(NEW_YORK) for moment in closes]
    assert [(m.date(), m.strftime("%H:%M:%S")) for m in local] == [
        (date(2024, 3, 7), "16:30:05"),  # the first tick at or after 16:15
        (date(2024, 3, 8), "16:30:05"),
        (date(2024, 3, 11), "16:30:05"),  # not on Saturday or Sunday
    ]
    assert last == date(2024, 3, 11)
    assert {m.astimezone(NEW_YORK).weekday() for m in polls} == {0, 3, 4}  # Mon, Thu, Fri
    assert all("04:00" <= m.astimezone(NEW_YORK).strftime("%H:%M") < "20:00" for m in polls)
    assert min(clock.sleeps) > 0


def test_a_close_job_already_done_today_is_not_repeated():
    schedule = Schedule(every=timedelta(minutes=1))
    closes: list[datetime] = []
    run_live(
        schedule,
        FakeClock(new_york(8, 16, 20)),
        lambda _: None,
        closes.append,
        last_close=date(2024, 3, 8),
        ticks=5,
    )
    assert closes == []


def test_ticks_land_just_after_each_bar_closes():
    schedule = Schedule(every=timedelta(minutes=1))
    assert schedule.next_tick(new_york(8, 9, 35, 5)) == new_york(8, 9, 36, 5)
    assert schedule.next_tick(new_york(8, 9, 35, 1)) == new_york(8, 9, 35, 5)


def test_schedule_settings_are_checked():
    with pytest.raises(InputError, match=r"stocks\.market_tz 'Mars/Olympus'"):
        Schedule.from_settings(StocksSettings(market_tz="Mars/Olympus"), timedelta(minutes=1))
    with pytest.raises(InputError, match="--every 0.5s: expected at least 1s"):
        Schedule.from_settings(StocksSettings(), timedelta(seconds=0.5))
    schedule = Schedule.from_settings(StocksSettings(close_time="17:05"), timedelta(minutes=5))
    assert schedule.close_time.strftime("%H:%M") == "17:05"


def test_two_ticks_of_every_write_new_bars_only_once_each(settings, yahoo, tmp_path):
    lake = Lake(tmp_path / "lake")
    job = StocksIngest(
        settings,
        lake,
        None,
        YahooClient(settings.yahoo_url),
        IngestOptions(venues=parse_exchanges("nasdaq,nyse")),
    )
    job.tickers = pl.DataFrame(
        {"venue": ["nasdaq", "nyse"], "symbol": ["AAA", "BBB"], "yahoo": ["AAA", "BBB"]}
    ).with_columns(
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in list(INSTRUMENT_SCHEMA.items())[3:]
    )
    written: list[int] = []
    run_live(
        Schedule(every=timedelta(minutes=1)),
        FakeClock(new_york(8, 9, 35, 5)),
        lambda now: written.append(job.poll(now, "1m").written),
        lambda now: pytest.fail("no close job in the morning"),
        ticks=2,
    )
    assert written == [10, 2]  # 09:30–09:34 for both, then the 09:35 bar of each
    stored = lake.read("bars")
    assert stored.height == 12 and stored.select("symbol", "ts").is_unique().all()
    assert len(yahoo.charts()) == 4
    assert job.marks[("nasdaq", "AAA", "1m")] == new_york(8, 9, 35)  # the next tick reads no Parquet
