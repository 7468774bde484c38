"""The stream bookkeeping every detector shares (DetectorState): each filter keeps and drops the right rows,
in a batch (empty state) and with what an earlier call left, on eager and lazy frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tapewatch.detect.base import DetectorState
from tapewatch.records import TIME

KEY = ["venue", "symbol"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B = ("x", "AAA"), ("x", "BBB")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rows(*items: tuple[str, float]) -> pl.DataFrame:
    """Rows of venue x: (symbol, minutes after T0), with their position as `n`."""
    return pl.DataFrame(
        {
            "venue": ["x"] * len(items),
            "symbol": [symbol for symbol, _ in items],
            "ts": [at(minutes) for _, minutes in items],
            "n": list(range(len(items))),
        },
        schema={"venue": pl.String, "symbol": pl.String, "ts": TIME, "n": pl.Int64},
    )


def kept(frame: pl.DataFrame | pl.LazyFrame) -> list[int]:
    return sorted((frame.collect() if isinstance(frame, pl.LazyFrame) else frame)["n"].to_list())


@pytest.mark.parametrize("lazy", [False, True])
def test_undecided_keeps_only_rows_after_their_keys_decided_until(lazy: bool) -> None:
    frame = rows(("AAA", 1), ("AAA", 2), ("AAA", 3), ("BBB", 1))
    state = DetectorState(decided_until={A: at(2)})
    assert kept(state.undecided(frame.lazy() if lazy else frame, KEY)) == [2, 3]  # AAA at 2 was decided
    assert kept(DetectorState().undecided(frame, KEY)) == [0, 1, 2, 3]  # a batch decides everything


def test_filters_keep_the_rows_in_the_order_given() -> None:
    """Detectors pair the filtered rows with arrays built before; a filter must not reorder them."""
    frame = rows(("BBB", 3), ("AAA", 9), ("BBB", 1), ("AAA", 4), ("AAA", 7))
    state = DetectorState(decided_until={A: at(5), B: at(0)}, history_start={A: at(0), B: at(0)})
    assert state.undecided(frame, KEY)["n"].to_list() == [0, 1, 2, 4]  # AAA at 4 was decided
    assert state.warmed_up(frame, KEY, timedelta(minutes=2), frame)["n"].to_list() == [0, 1, 3, 4]


def test_undecided_judges_the_moment_given_not_ts() -> None:
    frame = rows(("AAA", 1), ("AAA", 2)).with_columns(closed_at=pl.col("ts") + timedelta(minutes=5))
    state = DetectorState(decided_until={A: at(6.5)})
    assert kept(state.undecided(frame, KEY, at="closed_at")) == [1]  # closed at 7 > 6.5; at 6 it was decided
    assert kept(state.undecided(frame, KEY)) == []


@pytest.mark.parametrize("lazy", [False, True])
def test_warmed_up_counts_from_the_earlier_of_the_call_and_the_state(lazy: bool) -> None:
    frame = rows(("AAA", 10), ("AAA", 69), ("AAA", 70), ("BBB", 50), ("BBB", 80))
    warmup = timedelta(hours=1)
    batch = DetectorState().warmed_up(frame.lazy() if lazy else frame, KEY, warmup, frame)
    assert kept(batch) == [2]  # AAA began at 10: 70 is warm, 69 not; BBB began at 50: 80 not yet
    # The state saw BBB from 0 (80 is warm, 50 not); AAA from 30, but this call holds an older row (10).
    state = DetectorState(history_start={B: at(0), A: at(30)})
    assert kept(state.warmed_up(frame, KEY, warmup, frame)) == [2, 4]


def test_history_starts_take_the_earlier_start() -> None:
    frame = rows(("AAA", 10), ("BBB", 50))
    starts = DetectorState(history_start={B: at(5), A: at(20)}).history_starts(frame, KEY)
    assert dict(zip(starts["symbol"], starts["history_start"], strict=True)) == {"AAA": at(10), "BBB": at(5)}


@pytest.mark.parametrize("lazy", [False, True])
def test_cooled_down_chains_over_every_hit(lazy: bool) -> None:
    # AAA qualifies every 4 minutes from 0 to 12, then again at 30: two runs with a 5-minute cooldown.
    hits = rows(("AAA", 8), ("AAA", 0), ("AAA", 4), ("AAA", 12), ("AAA", 30), ("BBB", 3))
    cooldown = timedelta(minutes=5)
    batch = DetectorState().cooled_down(hits.lazy() if lazy else hits, KEY, cooldown)
    assert kept(batch) == [1, 4, 5]  # 4, 8 and 12 each follow a hit 4 minutes before; unsorted input too
    state = DetectorState(last_hit={A: at(-3), B: at(-10)})
    assert kept(state.cooled_down(hits, KEY, cooldown)) == [4, 5]  # AAA at 0 continues the earlier run


def test_cooled_down_needs_more_than_the_cooldown() -> None:
    hits = rows(("AAA", 0), ("AAA", 5), ("AAA", 10.5))
    assert kept(DetectorState().cooled_down(hits, KEY, timedelta(minutes=5))) == [0, 2]


def test_spaced_chains_over_alerts_only() -> None:
    # Hits every 4 minutes for 20 minutes: with a 10-minute window, one alert each 10 minutes of the run.
    hits = rows(*(("AAA", m) for m in (0, 4, 8, 12, 16, 20)), ("BBB", 1))
    window = timedelta(minutes=10)
    assert kept(DetectorState().spaced(hits, KEY, window)) == [0, 3, 6]  # 12 is 12 after 0; 20 is 8 after
    assert kept(DetectorState().cooled_down(hits, KEY, window)) == [0, 6]  # a cooldown: one run, one alert
    state = DetectorState(last_hit={A: at(-5)})
    assert kept(state.spaced(hits, KEY, window)) == [2, 5, 6]  # 0 and 4 fall in the earlier alert's window


def test_spaced_keeps_a_hit_exactly_one_window_on() -> None:
    hits = rows(("AAA", 0), ("AAA", 10))
    assert kept(DetectorState().spaced(hits, KEY, timedelta(minutes=10))) == [0, 1]


def test_cooldowns_may_run_on_a_finer_key_than_decisions() -> None:
    """A detector may keep cooldowns on a finer key than its decided rows (wash_accounts: per group)."""
    hits = rows(("AAA", 0), ("AAA", 2)).with_columns(group=pl.Series(["g1", "g2"]))
    state = DetectorState(decided_until={A: at(-1)}, last_hit={("x", "AAA", "g1"): at(-1)})
    cooled = state.cooled_down(state.undecided(hits, KEY), [*KEY, "group"], timedelta(minutes=5))
    assert kept(cooled) == [1]  # g1 continues its earlier run; g2 has none
