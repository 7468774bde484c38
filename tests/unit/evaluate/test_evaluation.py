"""Evaluation arithmetic on hand-computed cases, the loaders' messages, and duration parsing.

Every expected number below is worked out by hand from the definitions in
tapewatch.evaluate.scoring's docstring (window [-2m, +5m] unless a test says else).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from tapewatch.cli.summary import evaluation_table
from tapewatch.errors import InputError
from tapewatch.evaluate.scoring import (
    ALERT_FRAME_SCHEMA,
    ALL_DETECTORS,
    DetectorScore,
    EvaluationReport,
    HeldOutPart,
    Span,
    alerts_to_frame,
    best_choice,
    coverage_symbol_days,
    evaluate_alerts,
    events_in,
    forward_folds,
    load_alerts,
    load_labels,
    outside_events,
    parse_duration,
    quiet_symbol_days,
    scaled_count,
)
from tapewatch.records import TIME, Alert

T0 = datetime(2021, 3, 1, 17, 0, tzinfo=UTC)


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def alerts_frame(*rows: tuple) -> pl.DataFrame:
    """Alerts from (detector, symbol, detected_at[, typology]) tuples; ids unique per row."""
    records = []
    for number, row in enumerate(rows):
        detector, symbol, detected_at, *rest = row
        records.append(
            {
                "id": f"a{number}",
                "typology": rest[0] if rest else "pump_and_dump",
                "venue": "binance",
                "symbol": symbol,
                "start": detected_at - timedelta(minutes=10),
                "end": detected_at,
                "detected_at": detected_at,
                "score": 0.8,
                "severity": "high",
                "detector": detector,
            }
        )
    return pl.DataFrame(records, schema=ALERT_FRAME_SCHEMA)


def labels_frame(*rows: tuple[str, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": [symbol for symbol, _ in rows], "event_time": [moment for _, moment in rows]},
        schema={"symbol": pl.String(), "event_time": TIME},
    )


def score_of(report: EvaluationReport, detector: str) -> DetectorScore:
    (score,) = [score for score in report.scores if score.detector == detector]
    return score


# ---------------------------------------------------------------- windows and counting


def test_window_ends_are_inclusive_and_one_microsecond_outside_misses() -> None:
    labels = labels_frame(("AAA", T0), ("BBB", T0), ("CCC", T0), ("DDD", T0))
    alerts = alerts_frame(
        ("d", "AAA", at(-120)),  # exactly event - before: caught, delay -120
        ("d", "BBB", at(300)),  # exactly event + after: caught, delay +300
        ("d", "CCC", at(-120.000001)),  # 1 µs too early: missed, false alarm
        ("d", "DDD", at(300.000001)),  # 1 µs too late: missed, false alarm
    )
    score = score_of(evaluate_alerts(alerts, labels), "d")
    assert (score.events, score.caught, score.recall) == (4, 2, 0.5)
    assert (score.alerts, score.false_alarms, score.precision) == (4, 2, 0.5)
    assert score.delays == [-120.0, 300.0]


def test_custom_window_moves_the_edges() -> None:
    labels = labels_frame(("AAA", T0))
    alerts = alerts_frame(("d", "AAA", at(-30)), ("d", "AAA", at(61)))
    report = evaluate_alerts(alerts, labels, before=timedelta(seconds=29), after=timedelta(seconds=61))
    score = score_of(report, "d")
    assert (score.caught, score.false_alarms, score.delays) == (1, 1, [61.0])


def test_negative_delay_when_the_detector_fires_before_the_label() -> None:
    labels = labels_frame(("AAA", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", "AAA", at(-45))), labels), "d")
    assert score.delays == [-45.0]
    assert score.delay_median_s == score.delay_max_s == -45.0


def test_two_alerts_for_one_event_count_once_for_recall_and_twice_as_true_alerts() -> None:
    labels = labels_frame(("AAA", T0), ("AAA", at(0, T0 + timedelta(days=1))))
    alerts = alerts_frame(("d", "AAA", at(60)), ("d", "AAA", at(10)))
    score = score_of(evaluate_alerts(alerts, labels), "d")
    assert (score.events, score.caught, score.recall) == (2, 1, 0.5)
    assert (score.alerts, score.false_alarms, score.precision) == (2, 0, 1.0)
    assert score.delays == [10.0]  # the earliest alert in the window, not the first row


def test_one_alert_in_two_overlapping_windows_is_one_true_alert_catching_both() -> None:
    labels = labels_frame(("AAA", T0), ("AAA", at(180)))
    score = score_of(evaluate_alerts(alerts_frame(("d", "AAA", at(120))), labels), "d")
    assert (score.caught, score.alerts, score.precision, score.false_alarms) == (2, 1, 1.0, 0)
    assert score.delays == [-60.0, 120.0]


def test_alert_on_another_symbol_is_a_false_alarm_and_catches_nothing() -> None:
    labels = labels_frame(("AAA/BTC", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", "BBB/BTC", T0)), labels), "d")
    assert (score.caught, score.recall, score.false_alarms, score.precision) == (0, 0.0, 1, 0.0)
    assert score.delay_median_s is None and score.delay_p90_s is None and score.delay_max_s is None


@pytest.mark.parametrize("spelling", ["MTHBTC", "mth-btc", "Mth_Btc", "MTH/BTC:BTC", "MTH/BTC"])
def test_symbols_match_after_normalisation(spelling: str) -> None:
    labels = labels_frame(("MTH/BTC", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", spelling, at(5))), labels), "d")
    assert (score.caught, score.false_alarms) == (1, 0)


def test_normalisation_does_not_match_a_different_symbol() -> None:
    labels = labels_frame(("MTH/BTC", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", "MTH/BT", at(5)), ("d", "MTH", at(5))), labels), "d")
    assert (score.caught, score.false_alarms) == (0, 2)


def test_typology_filter_drops_other_typologies_before_counting() -> None:
    labels = labels_frame(("AAA", T0))
    alerts = alerts_frame(
        ("d", "AAA", at(5), "volume_anomaly"),
        ("d", "BBB", at(5), "volume_anomaly"),
        ("d", "AAA", at(20), "pump_and_dump"),
        ("e", "AAA", at(1), "volume_anomaly"),
    )
    report = evaluate_alerts(alerts, labels, typology="pump_and_dump")
    assert [score.detector for score in report.scores] == ["d", ALL_DETECTORS]
    score = score_of(report, "d")
    assert (score.alerts, score.false_alarms, score.delays) == (1, 0, [20.0])
    unfiltered = score_of(evaluate_alerts(alerts, labels), "d")
    assert (unfiltered.alerts, unfiltered.false_alarms, unfiltered.delays) == (3, 1, [5.0])


def test_delay_percentiles_interpolate_linearly() -> None:
    # delays 0, 10, 20, 30, 100 s: median 20; p90 at rank 0.9 * 4 = 3.6 -> 30 + 0.6 * 70 = 72; max 100
    offsets = [0, 10, 20, 30, 100]
    labels = labels_frame(*[(f"S{i}", T0) for i in range(5)])
    alerts = alerts_frame(*[("d", f"S{i}", at(offset)) for i, offset in enumerate(offsets)])
    score = score_of(evaluate_alerts(alerts, labels, after=timedelta(minutes=2)), "d")
    assert score.delay_median_s == 20.0
    assert score.delay_p90_s == pytest.approx(72.0)
    assert score.delay_max_s == 100.0


def test_median_of_an_even_count_is_the_midpoint() -> None:
    labels = labels_frame(("A", T0), ("B", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", "A", at(-10)), ("d", "B", at(40))), labels), "d")
    assert score.delay_median_s == 15.0
    assert score.delay_p90_s == pytest.approx(35.0)  # -10 + 0.9 * 50


def test_all_detectors_row_merges_alerts_and_takes_the_earliest_catch() -> None:
    labels = labels_frame(("A", T0), ("B", T0), ("C", T0))
    alerts = alerts_frame(
        ("zeta", "A", at(30)),
        ("zeta", "B", at(200)),
        ("alpha", "B", at(50)),
        ("alpha", "X", at(0)),  # false alarm
    )
    report = evaluate_alerts(alerts, labels, symbol_days=8.0)
    assert [score.detector for score in report.scores] == ["alpha", "zeta", ALL_DETECTORS]
    union = score_of(report, ALL_DETECTORS)
    assert (union.alerts, union.events, union.caught) == (4, 3, 2)
    assert union.recall == pytest.approx(2 / 3)
    assert (union.false_alarms, union.precision, union.false_alarms_per_symbol_day) == (1, 0.75, 0.125)
    assert union.delays == [30.0, 50.0]  # event B: alpha at +50 beats zeta at +200
    alpha = score_of(report, "alpha")
    assert (alpha.caught, alpha.false_alarms, alpha.false_alarms_per_symbol_day) == (1, 1, 0.125)


def test_false_alarms_per_symbol_day_is_none_without_coverage() -> None:
    labels = labels_frame(("A", T0))
    score = score_of(evaluate_alerts(alerts_frame(("d", "B", T0), ("d", "C", T0)), labels), "d")
    assert score.false_alarms == 2
    assert score.false_alarms_per_symbol_day is None
    with_days = score_of(
        evaluate_alerts(alerts_frame(("d", "B", T0), ("d", "C", T0)), labels, symbol_days=4), "d"
    )
    assert with_days.false_alarms_per_symbol_day == 0.5


def test_a_repeated_alert_id_is_counted_once() -> None:
    alerts = alerts_frame(("d", "B", T0))
    doubled = pl.concat([alerts, alerts])
    score = score_of(evaluate_alerts(doubled, labels_frame(("A", T0))), "d")
    assert (score.alerts, score.false_alarms) == (1, 1)


def test_no_alerts_gives_zero_recall_and_no_precision() -> None:
    report = evaluate_alerts(alerts_frame(), labels_frame(("A", T0)))
    assert [score.detector for score in report.scores] == [ALL_DETECTORS]
    (score,) = report.scores
    assert (score.alerts, score.caught, score.recall, score.precision) == (0, 0, 0.0, None)


def test_no_labels_gives_no_recall_and_every_alert_is_a_false_alarm() -> None:
    score = score_of(evaluate_alerts(alerts_frame(("d", "A", T0)), labels_frame()), "d")
    assert (score.events, score.recall, score.precision, score.false_alarms) == (0, None, 0.0, 1)


def test_negative_window_is_refused() -> None:
    with pytest.raises(InputError, match="negative"):
        evaluate_alerts(alerts_frame(), labels_frame(), before=timedelta(seconds=-1))


def test_detail_has_one_row_per_event_and_detector() -> None:
    labels = labels_frame(("MTH/BTC", T0), ("BRD/BTC", T0))
    report = evaluate_alerts(alerts_frame(("d", "MTHBTC", at(-5))), labels)
    assert report.detail.columns == ["symbol", "event_time", "detector", "caught", "delay_s"]
    assert report.detail.rows() == [
        ("MTH/BTC", T0, "d", True, -5.0),
        ("BRD/BTC", T0, "d", False, None),
        ("MTH/BTC", T0, ALL_DETECTORS, True, -5.0),
        ("BRD/BTC", T0, ALL_DETECTORS, False, None),
    ]


def test_scores_frame_and_rendered_table_show_the_figures() -> None:
    labels = labels_frame(("A", T0), ("B", T0))
    report = evaluate_alerts(alerts_frame(("det", "A", at(95)), ("det", "Z", T0)), labels, symbol_days=2.0)
    frame = report.scores_frame()
    assert frame.get_column("detector").to_list() == ["det", ALL_DETECTORS]
    assert frame.row(0, named=True)["precision"] == 0.5
    console = Console(record=True, width=200)
    console.print(evaluation_table(report))
    text = console.export_text()
    assert "window −2m / +5m" in text and "2.0 symbol-days" in text
    det_line = next(line for line in text.splitlines() if "det " in line and ALL_DETECTORS not in line)
    assert "50.0%" in det_line and "1m35s" in det_line and "0.5" in det_line


# ---------------------------------------------------------------- loading alerts


def make_alert(symbol: str, detected_at: datetime, detector: str = "pump") -> Alert:
    return Alert.build(
        detector=detector,
        typology="pump_and_dump",
        venue="binance",
        symbol=symbol,
        start=detected_at - timedelta(minutes=5),
        end=detected_at,
        detected_at=detected_at,
        score=0.93,
        evidence={"volume_z": 12.5},
    )


def test_load_alerts_reads_what_alert_writes(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    first, second = make_alert("MTH/BTC", at(30)), make_alert("BRD/BTC", at(0.5), detector="volume")
    path.write_text(first.to_json_line() + "\n\n" + second.to_json_line() + "\n")
    frame = load_alerts(path)
    assert frame.schema == ALERT_FRAME_SCHEMA
    assert frame.get_column("id").to_list() == [first.id, second.id]
    assert frame.get_column("detected_at").to_list() == [at(30), at(0.5)]
    assert frame.row(1, named=True)["severity"] == "critical"


def test_load_alerts_names_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    good = make_alert("MTH/BTC", T0).to_json_line()
    bad = json.loads(good) | {"detected_at": "yesterday"}
    path.write_text(f"{good}\n{good}\n{json.dumps(bad)}\n")
    with pytest.raises(InputError, match=r"alerts '.*alerts\.jsonl': line 3: field 'detected_at'"):
        load_alerts(path)


def test_load_alerts_rejects_a_line_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("not json\n")
    with pytest.raises(InputError, match="line 1: Invalid JSON"):
        load_alerts(path)


def test_load_alerts_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_alerts(tmp_path / "absent.jsonl")


def test_load_alerts_of_an_empty_file_is_an_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("")
    frame = load_alerts(path)
    assert frame.height == 0 and frame.schema == ALERT_FRAME_SCHEMA


def test_load_alerts_converts_offsets_and_naive_times_to_utc(tmp_path: Path) -> None:
    record = json.loads(make_alert("MTH/BTC", T0).to_json_line())
    record |= {"detected_at": "2021-03-01T18:00:30+01:00", "start": "2021-03-01T16:55:00"}
    path = write(tmp_path, "alerts.jsonl", json.dumps(record) + "\n")
    assert load_alerts(path).select("start", "detected_at").row(0) == (at(-300), at(30))


# ---------------------------------------------------------------- loading labels


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_labels_reads_every_time_spelling_as_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "symbol,event_time\n"
        "A,2021-03-01 17:00\n"
        "B,2021-03-01T17:00:00Z\n"
        "C,2021-03-01T18:00:00+01:00\n"
        "D,1614618000000\n"
        "E,1614618000\n"
        "F, 2021-03-01T17:00:00.000z \n",
    )
    frame = load_labels(path)
    assert frame.schema == {"symbol": pl.String(), "event_time": TIME, "typology": pl.String()}
    assert frame.get_column("event_time").to_list() == [T0] * 6
    assert frame.get_column("symbol").to_list() == list("ABCDEF")


def test_load_labels_default_columns_follow_the_preference_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "file,coin,pair,time,announced_at_utc\nx.gz,MTH,MTH/BTC,2020-01-01 00:00,2021-03-01 17:00\n",
    )
    assert load_labels(path).select("symbol", "event_time").row(0) == (
        "MTH/BTC",
        T0,
    )  # 'pair'; 'announced_at_utc' before 'time'


def test_load_labels_explicit_columns_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "symbol,coin,event_time,onset\nMTH/BTC,MTH,2021-01-01 00:00,2021-03-01 17:00\n",
    )
    assert load_labels(path, symbol_col="coin", time_col="onset").select("symbol", "event_time").row(0) == (
        "MTH",
        T0,
    )


def test_load_labels_joins_date_and_hour_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path, "lamorgia.csv", "symbol,group,date,hour,exchange\nMTH,ATW,2021-03-01,17:00,binance\n"
    )
    assert load_labels(path, time_col="date+hour").select("symbol", "event_time").row(0) == ("MTH", T0)


def test_load_labels_missing_named_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "symbol,when\nA,2021-03-01 17:00\n")
    with pytest.raises(InputError) as caught:
        load_labels(path, time_col="x")
    assert str(caught.value) == f"labels '{path}': no column 'x'; columns are: symbol, when"


def test_load_labels_without_any_default_column_says_which_option_to_use(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "symbol,when\nA,2021-03-01 17:00\n")
    with pytest.raises(InputError, match=r"columns are: symbol, when \(choose one with --time-col\)"):
        load_labels(path)


def test_load_labels_names_the_row_with_an_unreadable_time(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "symbol,time\nA,2021-03-01 17:00\nB,1 March 2021\n")
    with pytest.raises(InputError, match=r"row 2 \(B\), column 'time': cannot read time '1 March 2021'"):
        load_labels(path)


def test_load_labels_refuses_an_empty_time_or_symbol(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"row 1 \(A\), column 'time': no time"):
        load_labels(write(tmp_path, "a.csv", "symbol,time\nA,\n"))
    with pytest.raises(InputError, match=r"row 2: empty symbol in column 'symbol'"):
        load_labels(write(tmp_path, "b.csv", "symbol,time\nA,2021-03-01 17:00\n,2021-03-01 17:00\n"))


def test_load_labels_reads_tsv_and_json(tmp_path: Path) -> None:
    tsv = write(tmp_path, "events.tsv", "coin\tpair\ttimestamp\nMTH\tMTH/BTC\t2021-03-01 17:00:00+00:00\n")
    assert load_labels(tsv).select("symbol", "event_time").row(0) == ("MTH/BTC", T0)
    records = [{"symbol": "MTH-BTC", "exchange": "BINANCE_SPOT", "time": "2021-03-01 17:00:00"}]
    assert load_labels(write(tmp_path, "pumps.json", json.dumps(records))).select("symbol", "event_time").row(
        0
    ) == ("MTH-BTC", T0)


def test_load_labels_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"labels '.*absent\.csv': no such file"):
        load_labels(tmp_path / "absent.csv")


# ---------------------------------------------------------------- coverage and durations


def test_coverage_sums_each_symbols_observed_span_in_days() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["A", "A", "A", "B", "B", "C", "B"],
            "ts": [T0, at(86_400), at(3600), at(0), at(43_200), at(999), None],
        },
        schema={"symbol": pl.String(), "ts": TIME},
    )
    assert coverage_symbol_days(frame) == pytest.approx(1.5)  # A: 1 day, B: 0.5 day, C: one trade, 0


def test_coverage_with_max_gap_leaves_out_the_gaps_between_windows() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["A"] * 4 + ["B"] * 2,
            "ts": [T0, at(3600), at(30 * 86_400), at(30 * 86_400 + 7200), T0, at(5 * 3600)],
        },
        schema={"symbol": pl.String(), "ts": TIME},
    )
    assert coverage_symbol_days(frame) == pytest.approx(30 + 2 / 24 + 5 / 24)
    assert coverage_symbol_days(frame, max_gap=timedelta(hours=5)) == pytest.approx((1 + 2 + 5) / 24)
    assert coverage_symbol_days(frame, max_gap=timedelta(hours=4, minutes=59)) == pytest.approx(3 / 24)


def test_coverage_of_an_empty_frame_is_zero_and_missing_columns_are_named() -> None:
    assert coverage_symbol_days(pl.DataFrame(schema={"symbol": pl.String(), "ts": TIME})) == 0.0
    with pytest.raises(InputError, match="'ts'"):
        coverage_symbol_days(pl.DataFrame({"symbol": ["A"]}))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m", 120),
        ("5 min", 300),
        ("30s", 30),
        ("1h", 3600),
        ("90", 90),
        ("1.5m", 90),
        ("250ms", 0.25),
        ("0", 0),
    ],
)
def test_parse_duration_reads_the_window_spellings(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "abc", "5 parsecs", "-2m", "2m3", "m", "1..5m", "2 m m"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(InputError, match="expected"):
        parse_duration(text)


def test_typology_filters_labels_that_carry_one(tmp_path):
    labels_path = tmp_path / "labels.csv"
    labels_path.write_text(
        "typology,symbol,event_time\n"
        "pump_and_dump,AAA/BTC,2024-01-01T10:00:00Z\n"
        "wash_trading,AAA/BTC,2024-01-01T12:00:00Z\n"
    )
    labels = load_labels(labels_path)
    assert labels["typology"].to_list() == ["pump_and_dump", "wash_trading"]
    alerts = pl.DataFrame(
        {
            "id": ["a"],
            "typology": ["pump_and_dump"],
            "symbol": ["AAA/BTC"],
            "detector": ["pump_onset"],
            "detected_at": [datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)],
        }
    )
    pump_only = evaluate_alerts(alerts, labels, typology="pump_and_dump").scores[0]
    assert (pump_only.events, pump_only.caught, pump_only.recall) == (1, 1, 1.0)
    everything = evaluate_alerts(alerts, labels).scores[0]
    assert everything.events == 2


# ---------------------------------------------------------------- held out, forward in time

DAY = 86_400


def trades_frame(symbol: str, seconds: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": [symbol] * len(seconds), "ts": [at(value) for value in seconds]},
        schema={"symbol": pl.String(), "ts": TIME},
    )


def test_forward_folds_expand_and_cut_before_each_first_test_event() -> None:
    times = [at(day * DAY) for day in range(31)]
    folds = forward_folds(list(reversed(times)), first_test=15, test_size=8)  # order of input does not matter
    before = timedelta(minutes=2)
    assert [(fold.choose.until, fold.test.since, fold.test.until) for fold in folds] == [
        (times[15] - before, times[15] - before, times[23] - before),
        (times[23] - before, times[23] - before, None),
    ]
    assert all(fold.choose.since is None for fold in folds)
    labels = labels_frame(*(("A", moment) for moment in times))
    assert [events_in(labels, fold.test).height for fold in folds] == [8, 8]
    assert [events_in(labels, fold.choose).height for fold in folds] == [15, 23]


def test_forward_folds_refuse_a_split_that_leaves_nothing_to_test() -> None:
    with pytest.raises(InputError, match="nothing to test"):
        forward_folds([T0, at(60)], first_test=2, test_size=1)


def test_outside_events_drops_rows_within_the_margin_on_the_same_symbol_only() -> None:
    alerts = alerts_frame(
        ("d", "MTH/BTC", at(-1800)),  # exactly 30 min before: near
        ("d", "MTHBTC", at(1801)),  # just outside
        ("d", "BRD/BTC", at(60)),  # another symbol: far from every one of its events
    )
    kept = outside_events(alerts, labels_frame(("mth-btc", T0)), "detected_at", timedelta(minutes=30))
    assert kept.get_column("id").to_list() == ["a1", "a2"]


def test_quiet_symbol_days_leave_out_the_margin_around_each_event() -> None:
    # one trade a minute for two days; the event's hour (±30 min) is not ordinary trading
    trades = trades_frame("A", [60.0 * minute for minute in range(2 * 1440 + 1)])
    labels = labels_frame(("A", at(DAY)))
    assert coverage_symbol_days(trades) == pytest.approx(2.0)
    quiet = quiet_symbol_days(trades, labels, margin=timedelta(minutes=30))
    # steps touching a trade within [day − 30 min, day + 30 min] drop out: 61 trades inside, 62 steps
    assert quiet == pytest.approx(2.0 - 62 / 1440)
    assert quiet_symbol_days(trades, labels_frame(("B", at(DAY)))) == pytest.approx(2.0)


def test_held_out_part_scores_only_its_span_and_counts_false_alarms_outside_the_margin() -> None:
    minutes = [60.0 * minute for minute in range(4 * 1440 + 1)]  # a trade a minute for four days
    trades = pl.concat([trades_frame("A", minutes), trades_frame("B", minutes)])
    labels = labels_frame(("A", at(DAY)), ("B", at(3 * DAY)))
    span = Span(since=at(2 * DAY))
    alerts = alerts_frame(
        ("rule", "A", at(DAY + 3)),  # catches A, but A is before the span: not scored
        ("rule", "B", at(3 * DAY + 4)),  # catches B, 4 s late
        ("rule", "B", at(3 * DAY + 600)),  # 10 min after B: neither a catch nor a false alarm
        ("rule", "A", at(2 * DAY + 3600)),  # ordinary trading in the span: a false alarm
        ("other", "A", at(3.5 * DAY), "wash_trading"),  # another typology
    )
    part = HeldOutPart.of(labels, trades, span)
    assert part.events.get_column("symbol").to_list() == ["B"]
    scores = part.scores(alerts, typology="pump_and_dump", detectors=["quiet"])
    rule = scores["rule"]
    assert (rule.events, rule.caught, rule.delay_median_s, rule.false_alarms) == (1, 1, 4.0, 1)
    quiet_days = 2 * 2 - 62 / 1440  # two symbols × the span's two days, less B's hour around its pump
    assert part.symbol_days == pytest.approx(quiet_days)
    assert rule.false_alarms_per_symbol_day == pytest.approx(1 / quiet_days)
    assert (scores["quiet"].alerts, scores["quiet"].caught, scores["quiet"].false_alarms) == (0, 0, 0)
    assert scores[ALL_DETECTORS].false_alarms == 1


def test_best_choice_prefers_recall_then_fewer_false_alarms_then_speed() -> None:
    def score(caught: int, false_rate: float, median: float | None) -> DetectorScore:
        return DetectorScore("d", 0, 8, caught, caught / 8, None, 0, false_rate, median, median, median)

    assert best_choice([("few", score(6, 0.0, 1.0)), ("most", score(8, 0.5, 9.0))])[0] == "most"
    assert best_choice([("noisy", score(8, 0.5, 1.0)), ("quiet", score(8, 0.1, 9.0))])[0] == "quiet"
    assert best_choice([("slow", score(8, 0.1, 9.0)), ("fast", score(8, 0.1, 2.0))])[0] == "fast"
    assert best_choice([("first", score(8, 0.1, 2.0)), ("second", score(8, 0.1, 2.0))])[0] == "first"
    with pytest.raises(InputError):
        best_choice([])


def test_scaled_count_keeps_the_share() -> None:
    assert [scaled_count(30, 31, events) for events in (31, 16, 8, 0)] == [30, 16, 8, 0]


def test_alerts_to_frame_matches_what_load_alerts_reads(tmp_path: Path) -> None:
    alerts = [make_alert("MTH/BTC", at(30)), make_alert("BRD/BTC", at(0.5), detector="volume")]
    path = tmp_path / "alerts.jsonl"
    path.write_text("".join(alert.to_json_line() + "\n" for alert in alerts))
    frame = alerts_to_frame(alerts)
    assert frame.height == 2 and frame.equals(load_alerts(path))
    assert alerts_to_frame([]).schema == ALERT_FRAME_SCHEMA
