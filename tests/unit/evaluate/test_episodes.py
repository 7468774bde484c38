"""Scoring alerts against labelled episodes: spans, accounts, schemes, false alarms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from tapewatch.evaluate.episodes import grade_episodes, score_episodes
from tapewatch.records import Alert
from tapewatch.sources.simulator.labels import LABEL_SCHEMA

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def label(typology: str, start: float, end: float, accounts: str, scheme: str | None = None) -> dict:
    return {
        "typology": typology,
        "venue": "v",
        "symbol": "S/BTC",
        "start": at(start),
        "end": at(end),
        "event_time": at(start),
        "accounts": accounts,
        "details": json.dumps({"scheme": scheme} if scheme else {}),
    }


def alert(typology: str, start: float, end: float, accounts: list[str], scheme: str | None = None) -> Alert:
    evidence = {"accounts": accounts} | ({"scheme": scheme} if scheme else {})
    return Alert.build(
        detector="d",
        typology=typology,
        venue="v",
        symbol="S/BTC",
        start=at(start),
        end=at(end),
        detected_at=at(end),
        score=0.8,
        evidence=evidence,
    )


LABELS = pl.DataFrame(
    [
        label("wash_trading", 0, 30, "a,b", "round_trip"),
        label("wash_trading", 100, 110, "c", "self_trade"),
        label("spoofing", 200, 201, "d"),
    ],
    schema=LABEL_SCHEMA,
    orient="row",
)


def by_name(scores) -> dict:
    return {score.name: score for score in scores}


def test_overlap_and_a_shared_account_make_a_match_per_typology_and_scheme():
    alerts = [
        alert("wash_trading", 10, 40, ["b", "x"], "round_trip"),  # overlaps, shares b
        alert("wash_trading", 10, 40, ["x", "y"], "round_trip"),  # overlaps, no shared account
        alert("wash_trading", 105, 106, ["c"], "round_trip"),  # right group, wrong scheme
        alert("spoofing", 300, 301, ["d"]),  # right account, wrong time
    ]
    scores = by_name(score_episodes(alerts, LABELS, symbol_days=2.0))
    wash = scores["wash_trading"]
    assert (wash.labels, wash.caught, wash.alerts, wash.true_alerts) == (2, 2, 3, 2)
    round_trip, self_trade = scores["wash_trading/round_trip"], scores["wash_trading/self_trade"]
    assert (round_trip.caught, round_trip.true_alerts, round_trip.alerts) == (1, 1, 3)
    assert (self_trade.labels, self_trade.caught, self_trade.alerts) == (1, 0, 0)
    spoof = scores["spoofing"]
    assert (spoof.recall, spoof.precision, spoof.false_alarms) == (0.0, 0.0, 1)
    assert spoof.false_alarms_per_symbol_day == 0.5


def test_an_alert_without_accounts_matches_on_time_alone():
    public = alert("wash_trading", 0, 24 * 60, [])
    score = by_name(score_episodes([public], LABELS, symbol_days=1.0))["wash_trading"]
    assert (score.caught, score.true_alerts) == (2, 1)


def test_scores_of_several_runs_add_up():
    first = by_name(score_episodes([alert("spoofing", 200, 201, ["d"])], LABELS, symbol_days=2.0))["spoofing"]
    second = by_name(score_episodes([alert("spoofing", 300, 301, ["d"])], LABELS, symbol_days=1.0))[
        "spoofing"
    ]
    both = first + second
    assert (both.labels, both.caught, both.alerts, both.true_alerts) == (2, 1, 2, 1)
    assert both.recall == 0.5 and both.precision == 0.5 and both.false_alarms_per_symbol_day == 1 / 3


def scored(typology: str, start: float, end: float, accounts: list[str], score: float) -> Alert:
    return alert(typology, start, end, accounts).model_copy(update={"score": score})


def test_a_score_cut_drops_weak_alerts_and_the_labels_only_they_caught():
    alerts = [
        scored("spoofing", 200, 201, ["d"], 0.9),  # true, strong
        scored("spoofing", 200, 201, ["d"], 0.3),  # true, weak duplicate
        scored("spoofing", 300, 301, ["d"], 0.5),  # false alarm
    ]
    (graded,) = grade_episodes(alerts, LABELS, symbol_days=1.0, typologies=["spoofing"])
    everything, strict, too_strict = graded.at(0.0), graded.at(0.6), graded.at(0.95)
    assert (everything.caught, everything.alerts, everything.true_alerts) == (1, 3, 2)
    assert (strict.caught, strict.alerts, strict.true_alerts) == (1, 1, 1)
    assert (too_strict.caught, too_strict.alerts) == (0, 0)
    assert list(graded.cuts) == [0.0, 0.3, 0.5, 0.9]
    assert (graded + graded).at(0.6).alerts == 2


def test_grading_at_cut_zero_is_the_plain_score():
    alerts = [scored("spoofing", 200, 201, ["d"], 0.0), scored("spoofing", 300, 301, ["d"], 0.7)]
    plain = by_name(score_episodes(alerts, LABELS, symbol_days=1.0))["spoofing"]
    graded = by_name(grade_episodes(alerts, LABELS, symbol_days=1.0))["spoofing"].at(0.0)
    assert plain == graded and (plain.caught, plain.alerts) == (1, 2)
