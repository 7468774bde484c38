"""`tapewatch risk`: a symbol's 1–100 score with its reasons, or the table of a whole universe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.options import ConfigOption, DbOption, settings_and_engine
from tapewatch.errors import InputError

if TYPE_CHECKING:
    from tapewatch.risk.score import RiskScore

out = Console(soft_wrap=True)


def parse_moment(text: str | None, option: str = "--at") -> datetime:
    """An ISO-8601 time (UTC when no offset is given), or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} '{text}': not a time; expected ISO-8601, e.g. 2024-03-01T12:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def risk(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Symbols to explain (none: the table of every symbol).")
    ] = None,
    venue: Annotated[
        str | None, typer.Option(help="Venue of the symbols (and the table's only venue).")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Score as of this time (ISO-8601, UTC) [default: now].")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Table: show this many symbols.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of tables.")] = False,
    lake: Annotated[
        str | None,
        typer.Option(help="Read recent bars from this lake (default: store.lake) for bar signals."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Risk 1–100 per symbol from recent alerts, the last bars and listing facts, with the reasons."""
    from tapewatch.io.lake import open_lake
    from tapewatch.risk.bars import last_bar_signals
    from tapewatch.risk.evidence import risk_table, symbol_risk

    moment = parse_moment(at)
    settings, engine = settings_and_engine(db, config)
    the_lake = open_lake(lake, settings.store.lake)
    try:
        if symbols:
            scores = [
                symbol_risk(engine, _venue(venue), symbol, moment, settings.risk, the_lake, last_bar_signals)
                for symbol in symbols
            ]
        else:
            scores = risk_table(
                engine, moment, settings.risk, venue=venue, lake=the_lake, bar_signals=last_bar_signals
            )[:top]
    finally:
        engine.dispose()
    if as_json:
        for score in scores:
            out.print(json.dumps(score.model_dump(mode="json")), highlight=False, soft_wrap=True)
        return
    if symbols:
        for score in scores:
            out.print(_reasons_table(score))
    else:
        out.print(_universe_table(scores, moment))


def _venue(venue: str | None) -> str:
    if venue is None:
        raise InputError("--venue: needed with symbols (e.g. --venue binance), a symbol is listed per venue")
    return venue


def _reasons_table(score: RiskScore) -> Table:
    table = Table(
        title=f"{score.venue}:{score.symbol} risk {score.score}/100 at {score.at:%Y-%m-%d %H:%M} UTC"
    )
    table.add_column("reason")
    table.add_column("score points", justify="right")
    for reason in score.reasons:
        table.add_row(reason.text, f"{reason.contribution:.1f}")
    if not score.reasons:
        table.add_row("no alerts, bar signals or listing facts against it", "0")
    return table


def _universe_table(scores: list[RiskScore], moment: datetime) -> Table:
    table = Table(title=f"Risk at {moment:%Y-%m-%d %H:%M} UTC, highest first")
    for column in ("venue", "symbol", "score", "top reason"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for score in scores:
        table.add_row(
            score.venue, score.symbol, str(score.score), score.reasons[0].text if score.reasons else "–"
        )
    return table
