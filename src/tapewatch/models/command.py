"""`tapewatch train …`: fit a model on labelled data, save it with its card, print what it learnt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli_options import ConfigOption
from tapewatch.durations import parse_duration

err = Console(stderr=True, soft_wrap=True)


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
    from tapewatch.config import load_settings
    from tapewatch.models.pump_model import train_pump_command

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


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
