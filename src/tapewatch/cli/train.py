"""`tapewatch train …`: fit a model on labelled data, save it with its card, print what it learnt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tapewatch.cli.options import ConfigOption
from tapewatch.cli.terminal import err
from tapewatch.durations import parse_duration
from tapewatch.extras import require


def train_pump(
    trades: Annotated[Path, typer.Option(help="Directory (or file) of trades around the labelled pumps.")],
    labels: Annotated[
        Path, typer.Option(help="Events CSV: symbol/pair and announced_at_utc (optional onset column).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Write the model file (a zip: model + card) here.")
    ],
    chunk: Annotated[str, typer.Option(help="Chunk length, e.g. 5s, 15s, 25s (La Morgia et al.).")] = "25s",
    fmt: Annotated[str, typer.Option("--format", help="Format of the trade files (as for detect).")] = "auto",
    venue: Annotated[str | None, typer.Option(help="Venue name for files that do not carry one.")] = None,
    config: ConfigOption = None,
) -> None:
    """Train the pump classifier on a forward-in-time split and save it with its model card."""
    require("ml", "lightgbm", "sklearn", command="train pump")
    from tapewatch.config import load_settings
    from tapewatch.training.pump_model import train_pump_command

    settings = load_settings(config)
    chunk_s = parse_duration(chunk, what="--chunk").total_seconds()
    with err.status("training the pump model…"):
        card = train_pump_command(trades, labels, out, chunk_s, settings.pump_train, fmt=fmt, venue=venue)
    table = Table(title=f"pump model, {chunk_s:g} s chunks, threshold {card.threshold:.3f} → {out}")
    for column in ("part", "events", "chunks", "pump chunks", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "part" else "right")
    parts = (
        ("train", card.train, None),
        ("validation (in sample)", card.validation, "validation_in_sample"),
        ("test", card.test, "test"),
    )
    for name, part, scored in parts:
        if part is None:
            continue
        metrics = card.metrics.get(scored) if scored else None
        table.add_row(
            name,
            str(len(part.events)),
            f"{part.chunks:,}",
            f"{part.positives:,}",
            *(_ratio(getattr(metrics, key, None)) for key in ("precision", "recall", "f1")),
        )
    err.print(table)
    for limit in card.limits:
        err.print(f"limit: {limit}", highlight=False)


def train_forecast(
    bars: Annotated[list[str], typer.Argument(help="OHLCV files (as for detect), one or more symbols.")],
    kind: Annotated[
        str, typer.Option(help="gbm (LightGBM, the default) or lstm (PyTorch: tapewatch[deep]).")
    ] = "gbm",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the trained forecaster here (JSON).")
    ] = None,
    evaluate: Annotated[
        Path | None, typer.Option(help="Do not train: evaluate this saved forecaster on the bars.")
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Training: last share of each symbol's bars held out.")
    ] = 0.2,
    fmt: Annotated[str, typer.Option("--format", help="Format of the files (as for detect).")] = "auto",
    config: ConfigOption = None,
) -> None:
    """Train the next-bar forecaster (high, low, close) and report its errors next to a last-value
    forecast, or evaluate a saved one."""
    if kind != "lstm":  # the LSTM needs PyTorch ([deep]), which its forecaster checks for
        require("ml", "lightgbm", command="train forecast")
    from tapewatch.config import load_settings
    from tapewatch.detect.bars.forecast import evaluate_forecaster, train_forecaster
    from tapewatch.detect.bars.forecasters import FORECASTERS, load_forecaster
    from tapewatch.errors import InputError
    from tapewatch.io.readers import read_inputs

    settings = load_settings(config).forecast_residual
    if kind not in FORECASTERS:
        raise InputError(f"--kind '{kind}': unknown; expected one of {', '.join(FORECASTERS)}")
    if (out is None) == (evaluate is None):
        raise InputError(
            "train forecast: give --out FILE to train, or --evaluate FILE to evaluate a saved model"
        )
    read = read_inputs(bars, fmt=fmt, kinds=("bars",))
    if read.bars.is_empty():
        raise InputError(f"{' '.join(bars)}: no bars found; expected OHLCV files")
    if evaluate is not None:
        model = load_forecaster(evaluate)
        report = evaluate_forecaster(model, read.bars, settings)
        title = f"{model.settings.kind} forecaster {evaluate} on {report.bars:,} bars"
    else:
        with err.status(f"training the {kind} forecaster…"):
            model, report = train_forecaster(read.bars, kind, settings.forecaster, holdout, settings)
        model.save(out)
        title = f"{kind} forecaster → {out}: held-out last {holdout:.0%} ({report.bars:,} bars)"
    table = Table(title=title)
    for column in ("target", "MAE", "last-value MAE", "RMSE", "last-value RMSE"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for target in report.mae:
        table.add_row(
            target,
            *(f"{value:.5f}" for value in (report.mae[target], report.naive_mae[target])),
            *(f"{value:.5f}" for value in (report.rmse[target], report.naive_rmse[target])),
        )
    err.print(table)
    err.print(
        f"residual alert rate {report.alert_rate:.2%} (errors in log units, ≈ relative)", highlight=False
    )


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
