"""Trained pump classifier vs the pump_onset rule on a forward split of real pump-and-dumps.

    python benchmarks/pump_model.py [PUMP_EVENTS_DIR]

PUMP_EVENTS_DIR holds `<COIN>_<time>.csv.gz` trade files and `events.csv` (default:
../shared/data/pump-events/dev). For chunks of 5, 15 and 25 s the model trains on the
earlier events (the latest of them choosing rounds and threshold) and is tested on the
latest third, after the split time only; the rule runs on the same trades and is
scored on the same test part:

- chunk level: labelled test chunks (tapewatch.models.pump_model's definition), a
  chunk flagged by the model when its probability reaches the threshold, by the rule
  when one of its qualifying moments (cooldown off) falls in the chunk; La Morgia et
  al.'s random forest reached F1 0.84 / 0.88 / 0.92 on their own 5 / 15 / 25 s chunks;
- event level: as benchmarks/pump_events.py — a pump is caught when an alert on its
  symbol has detected_at within [announcement − 2 min, + 5 min]; any other alert after
  the split is a false alarm, counted per symbol-day of trades after the split.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import polars as pl
from _common import data_dir
from rich.table import Table

from tapewatch.config import load_settings
from tapewatch.detect.pump_model import PumpModelDetector
from tapewatch.detect.pump_onset import PumpOnsetDetector
from tapewatch.evaluation import DetectorScore, coverage_symbol_days, evaluate_alerts
from tapewatch.io.readers import read_inputs
from tapewatch.models.pump_features import chunk_features
from tapewatch.models.pump_model import PumpModelCard, label_chunks, read_pump_labels, train_pump_model
from tapewatch.records import Alert
from tapewatch.report.summary import wide_console

CHUNKS_S = (5.0, 15.0, 25.0)
LA_MORGIA_F1 = {5.0: 0.84, 15.0: 0.88, 25.0: 0.92}


def main() -> None:
    directory = data_dir(sys.argv)
    console = wide_console()
    trades = read_inputs(sorted(directory.glob("*.csv.gz")), kinds=("trades",)).trades
    labels = read_pump_labels(directory / "events.csv")
    onset = load_settings().pump_onset
    rule_alerts = PumpOnsetDetector(onset).detect(trades)
    rule_moments = PumpOnsetDetector(onset.model_copy(update={"cooldown_min": 0.0})).detect(trades)
    table = _table()
    verdicts = []
    for chunk_s in CHUNKS_S:
        model, card = train_pump_model(trades, labels, chunk_s)
        test_from = card.test_from
        events = labels.filter(
            pl.col("announced_at") - timedelta(seconds=card.labels.ignore_before_s) >= test_from
        )
        chunks = _test_chunks(trades, labels, card)
        model_alerts = PumpModelDetector(model).detect(trades)
        days = coverage_symbol_days(trades.filter(pl.col("ts") >= test_from), max_gap=timedelta(days=1))
        scores = _event_scores(model_alerts + rule_alerts, events, test_from, days)
        model_chunks, rule_chunks = (
            card.metrics["test"],
            _flagged_chunk_metrics(chunks, rule_moments, chunk_s),
        )
        for name, chunk_row in (("pump_model", model_chunks.model_dump()), ("pump_onset", rule_chunks)):
            table.add_row(
                f"{chunk_s:g} s",
                name,
                *(_ratio(chunk_row[key]) for key in ("precision", "recall", "f1")),
                f"{LA_MORGIA_F1[chunk_s]:.2f}" if name == "pump_model" else "",
                *_event_cells(scores[name]),
            )
        table.add_section()
        verdicts.append(
            _verdict(
                chunk_s, scores["pump_model"], scores["pump_onset"], (model_chunks.f1, rule_chunks["f1"])
            )
        )
    console.print(
        f"{trades.height:,} trades, {labels.height} pumps; forward split: train + validation before "
        f"{card.test_from:%Y-%m-%d}, test {events.height} pumps after it ({days:.1f} symbol-days)"
    )
    console.print(table)
    for line in verdicts:
        console.print(line)


def _table() -> Table:
    table = Table(title="Pump classifier vs rule on the forward split's test part")
    for heading in ("chunk", "detector", "chunk P", "chunk R", "chunk F1", "La Morgia F1"):
        table.add_column(heading, justify="right")
    for heading in ("caught", "event P", "event F1", "FA / symbol-day", "delay median", "delay max"):
        table.add_column(heading, justify="right")
    return table


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


def _event_scores(
    alerts: list[Alert], events: pl.DataFrame, since: datetime, days: float
) -> dict[str, DetectorScore]:
    """Event-level scores per detector, over the alerts decided after the split."""
    frame = pl.DataFrame(
        [
            {
                "id": a.id,
                "symbol": a.symbol,
                "detected_at": a.detected_at,
                "detector": a.detector,
                "typology": a.typology,
            }
            for a in alerts
            if a.detected_at >= since
        ]
    )
    report = evaluate_alerts(
        frame,
        events.select("symbol", event_time="announced_at"),
        symbol_days=days,
        typology="pump_and_dump",
    )
    return {score.detector: score for score in report.scores}


def _event_cells(score: DetectorScore) -> list[str]:
    return [
        f"{score.caught}/{score.events}",
        _ratio(score.precision),
        _ratio(_f1(score.precision, score.recall)),
        f"{score.false_alarms_per_symbol_day:.3f}",
        _seconds(score.delay_median_s),
        _seconds(score.delay_max_s),
    ]


def _verdict(
    chunk_s: float, model: DetectorScore, rule: DetectorScore, chunk_f1: tuple[float | None, float | None]
) -> str:
    """One plain sentence: does the model beat the rule on this chunk size? Event F1 decides (alerts are what
    analysts get); chunk F1 and delay are said beside it."""
    model_f1, rule_f1 = _f1(model.precision, model.recall) or 0.0, _f1(rule.precision, rule.recall) or 0.0
    if model_f1 > rule_f1:
        outcome = "BEATS the rule"
    elif model_f1 == rule_f1:
        outcome = "TIES with the rule"
    else:
        outcome = "does NOT beat the rule"
    return (
        f"{chunk_s:g} s chunks: the model {outcome} on the forward split (event F1 {model_f1:.2f} vs {rule_f1:.2f}, "
        f"chunk F1 {_ratio(chunk_f1[0])} vs {_ratio(chunk_f1[1])}, "
        f"median delay {_seconds(model.delay_median_s)} vs {_seconds(rule.delay_median_s)})"
    )


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
