"""Trained pump classifier vs the pump_onset rule, both on the same held-out (latest) real pumps.

    python benchmarks/pump_model.py [PUMP_EVENTS_DIR]

PUMP_EVENTS_DIR holds `<COIN>_<time>.csv.gz` trade files and `events.csv` (default:
../shared/data/pump-events/dev). One forward cut in time, the model's: events sorted by
announcement, the latest third are the test, and the cut is the first test event's
announcement − 2 min. Both detectors see only trading before the cut when anything is
chosen, and both are scored on the same test part after it:

- the model (chunks of 5, 15 and 25 s) trains on the earlier events, the latest of them
  choosing its rounds and threshold (tapewatch.training.pump_model);
- the rule's thresholds are chosen on the same earlier part from the grid in _common.py
  (ONSET_GRID, `choose_onset` as benchmarks/pump_events.py does: most pumps caught, then
  fewest false alarms per symbol-day, then smallest delay); its shipped defaults are not
  used, since they were set on all 31 events.

Figures, test part only:
- chunk level: labelled test chunks (tapewatch.training.pump_model's definition), a chunk
  flagged by the model when its probability reaches the threshold, by the rule when one
  of its qualifying moments (cooldown off) falls in the chunk; La Morgia et al.'s random
  forest reached F1 0.84 / 0.88 / 0.92 on their own 5 / 15 / 25 s chunks;
- event level (tapewatch.evaluate.scoring.HeldOutPart): a pump is caught when an alert on its
  symbol has detected_at within [announcement − 2 min, + 5 min]; a false alarm is an
  alert more than 30 min from every pump on its symbol, per symbol-day of trading after
  the cut outside those margins; delays after the announcement minute.

Targets (issue 11) printed beside each: recall ≥ 30/31 scaled to the test events, ≤ 0.02
false alarms per symbol-day, median delay ≤ 5 s, p90 ≤ 15 s. Event F1 decides which is
better; the issue asks to ship the model if it beats the rule on these held-out figures.
"""

from __future__ import annotations

import sys
from datetime import datetime

import polars as pl
from _common import (
    changed,
    choose_onset,
    data_dir,
    onset_alerts,
    onset_grid,
    pump_checks,
    read_pump_data,
    seconds,
)
from rich.table import Table

from tapewatch.cli.summary import wide_console
from tapewatch.config import Settings
from tapewatch.detect.pump.model_features import chunk_features
from tapewatch.detect.pump.model_file import PumpModelCard
from tapewatch.detect.pump.pump_model import PumpModelDetector
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.pump.settings import PumpOnsetSettings
from tapewatch.evaluate.scoring import DetectorScore, HeldOutPart, Span, alerts_to_frame
from tapewatch.records import Alert
from tapewatch.training.pump_model import label_chunks, read_pump_labels, train_pump_model

CHUNKS_S = (5.0, 15.0, 25.0)
LA_MORGIA_F1 = {5.0: 0.84, 15.0: 0.88, 25.0: 0.92}
MODEL, RULE = PumpModelDetector.name, PumpOnsetDetector.name


def main() -> None:
    directory = data_dir(sys.argv)
    console = wide_console()
    data = read_pump_data(directory)
    trades = data.trades
    labels = read_pump_labels(directory / "events.csv")
    defaults = Settings().pump_onset
    grid, _ = onset_grid(defaults)
    candidates = [(settings, onset_alerts(trades, settings)) for settings in grid]
    rules: dict[datetime, tuple[PumpOnsetSettings, pl.DataFrame]] = {}
    table = _table()
    verdicts = []
    for chunk_s in CHUNKS_S:
        model, card = train_pump_model(trades, labels, chunk_s)
        test_from, test_metrics = card.test_from, card.metrics["test"]
        if test_from is None or test_metrics is None:
            sys.exit("the pump model's training settings hold out no test part (test_share = 0)")
        if test_from not in rules:
            choosing = HeldOutPart.of(data.labels, trades, Span(until=test_from))
            rules[test_from] = choose_onset(candidates, choosing)
        rule, rule_alerts = rules[test_from]
        test = HeldOutPart.of(data.labels, trades, Span(since=test_from))
        model_alerts = alerts_to_frame(PumpModelDetector(model).detect(trades))
        scores = test.scores(pl.concat([model_alerts, rule_alerts]), detectors=[MODEL, RULE])
        rule_moments = PumpOnsetDetector(rule.model_copy(update={"cooldown_min": 0.0})).detect(trades)
        chunk_rows = {
            MODEL: test_metrics.model_dump(),
            RULE: _flagged_chunk_metrics(_test_chunks(trades, labels, card), rule_moments, chunk_s),
        }
        _add_rows(table, chunk_s, chunk_rows, scores)
        verdicts.append(_verdict(chunk_s, scores, (chunk_rows[MODEL]["f1"], chunk_rows[RULE]["f1"])))
        verdicts += [
            f"  {name}: " + "; ".join(item.line for item in pump_checks(scores[name]))
            for name in (MODEL, RULE)
        ]
    console.print(
        f"{trades.height:,} trades, {labels.height} pumps; forward cut {test_from:%Y-%m-%d %H:%M}Z: model "
        f"trained and rule chosen before it ({changed(rule, defaults)}); both tested on the "
        f"{test.events.height} pumps after it ({test.symbol_days:.1f} symbol-days)"
    )
    console.print(table)
    for line in verdicts:
        console.print(line)


def _table() -> Table:
    table = Table(title="Pump classifier vs rule (both chosen before the cut) on the same held-out pumps")
    for heading in ("chunk", "detector", "chunk P", "chunk R", "chunk F1", "La Morgia F1"):
        table.add_column(heading, justify="right")
    for heading in (
        "caught",
        "event P",
        "event F1",
        "false alarms",
        "FA / symbol-day",
        "delay median",
        "delay p90",
    ):
        table.add_column(heading, justify="right")
    return table


def _add_rows(
    table: Table,
    chunk_s: float,
    chunk_rows: dict[str, dict[str, float | None]],
    scores: dict[str, DetectorScore],
) -> None:
    """One row per detector for this chunk size: chunk-level, then event-level figures."""
    for name, chunk_row in chunk_rows.items():
        table.add_row(
            f"{chunk_s:g} s",
            name,
            *(_ratio(chunk_row[key]) for key in ("precision", "recall", "f1")),
            f"{LA_MORGIA_F1[chunk_s]:.2f}" if name == MODEL else "",
            *_event_cells(scores[name]),
        )
    table.add_section()


def _test_chunks(trades: pl.DataFrame, labels: pl.DataFrame, card: PumpModelCard) -> pl.DataFrame:
    """The labelled, complete chunks of the test part: what the card's test metrics were counted on."""
    chunks = chunk_features(trades, card.features).filter(pl.col("closed_at").is_not_null())
    return label_chunks(chunks, labels, card.labels).filter(
        pl.col("label").is_not_null() & (pl.col("start") >= card.test_from)
    )


def _flagged_chunk_metrics(
    chunks: pl.DataFrame, moments: list[Alert], chunk_s: float
) -> dict[str, float | None]:
    """Chunk precision/recall/F1 of the rule: a chunk is flagged when a qualifying moment lies in it."""
    chunk_us = int(chunk_s * 1_000_000)
    flagged = pl.DataFrame(
        {"symbol": [a.symbol for a in moments], "at": [a.detected_at for a in moments]},
        schema={"symbol": pl.String(), "at": pl.Datetime("us", "UTC")},
    ).select(
        "symbol", start=pl.from_epoch(pl.col("at").dt.epoch("us") // chunk_us * chunk_us, time_unit="us")
    )
    flagged = flagged.with_columns(pl.col("start").dt.replace_time_zone("UTC"), flag=pl.lit(True)).unique()
    scored = chunks.join(flagged, on=["symbol", "start"], how="left").with_columns(
        pl.col("flag").fill_null(False)
    )
    hits = scored.filter(pl.col("flag") & (pl.col("label") == 1)).height
    flags, positives = scored.filter("flag").height, scored.filter(pl.col("label") == 1).height
    precision = hits / flags if flags else None
    recall = hits / positives if positives else None
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def _event_cells(score: DetectorScore) -> list[str]:
    return [
        f"{score.caught}/{score.events}",
        _ratio(score.precision),
        _ratio(_f1(score.precision, score.recall)),
        str(score.false_alarms),
        _ratio(score.false_alarms_per_symbol_day, "{:.3f}"),
        seconds(score.delay_median_s),
        seconds(score.delay_p90_s),
    ]


def _verdict(
    chunk_s: float, scores: dict[str, DetectorScore], chunk_f1: tuple[float | None, float | None]
) -> str:
    """One plain sentence: does the model beat the rule on this chunk size? Event F1 decides (alerts are what
    analysts get); chunk F1 and delay are said beside it."""
    model, rule = scores[MODEL], scores[RULE]
    model_f1, rule_f1 = _f1(model.precision, model.recall) or 0.0, _f1(rule.precision, rule.recall) or 0.0
    if model_f1 > rule_f1:
        outcome = "BEATS the rule"
    elif model_f1 == rule_f1:
        outcome = "TIES with the rule"
    else:
        outcome = "does NOT beat the rule"
    return (
        f"{chunk_s:g} s chunks: the model {outcome} chosen on the same earlier pumps "
        f"(held-out event F1 {model_f1:.2f} vs {rule_f1:.2f}, "
        f"chunk F1 {_ratio(chunk_f1[0])} vs {_ratio(chunk_f1[1])}, "
        f"median delay {seconds(model.delay_median_s)} vs {seconds(rule.delay_median_s)})"
    )


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(value: float | None, form: str = "{:.2f}") -> str:
    return "–" if value is None else form.format(value)


if __name__ == "__main__":
    main()
