"""`tapewatch demo`: the main job end to end on embedded defaults, with nothing to install.

Simulate a market with known manipulations (trades with accounts and the L3 order
stream), detect, keep the alerts in a local SQLite store, show what was found against
what was injected, and chart the top alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.evaluate.episodes import EpisodeScore, score_episodes
from tapewatch.evaluate.scoring import (
    EvaluationReport,
    coverage_symbol_days,
    evaluate_alerts,
    load_alerts,
)
from tapewatch.io.alert_lines import write_alerts
from tapewatch.io.lake import Lake
from tapewatch.progress import SILENT, Progress
from tapewatch.records import BAR_SCHEMA, Alert, empty_frame
from tapewatch.report.charts import render_alert_chart
from tapewatch.sources.simulator.market import SimulationConfig, simulate_market, write_market
from tapewatch.store.alert_store import open_store

DEMO_PUMPS_PER_SYMBOL_DAY = 1.0
"""Four times the simulator's realistic rate, so a short demo has several pumps to find."""


@dataclass
class DemoResult:
    """Where the demo put things and what it found, for the tests and the summary."""

    alerts: list[Alert]
    report: EvaluationReport
    episodes: list[EpisodeScore]
    """Wash trading, spoofing and layering against the injected episodes."""
    alerts_path: Path
    db_path: Path
    lake: Lake
    chart_png: Path | None
    chart_html: Path | None
    trades: int
    """How many trades were simulated."""
    labels: pl.DataFrame
    """The injected manipulations, one row each."""


def run_demo(
    out: Path,
    settings: Settings,
    *,
    symbols: int = 12,
    hours: float = 24.0,
    seed: int = 7,
    progress: Progress = SILENT,
) -> DemoResult:
    """Run the demo into `out`, reporting each stage to `progress`."""
    out.mkdir(parents=True, exist_ok=True)
    task = progress.add_task("simulating market", total=symbols)
    market = simulate_market(
        SimulationConfig(
            seed=seed, symbols=symbols, hours=hours, pumps_per_symbol_day=DEMO_PUMPS_PER_SYMBOL_DAY
        ),
        on_progress=lambda done, total: progress.update(task, completed=done, total=total),
    )
    write_market(market, out / "market")
    detecting = progress.add_task("detecting", total=None)
    alerts = run_batch(
        build_detectors(settings), market.trades, empty_frame(BAR_SCHEMA), orders=market.orders
    )
    progress.update(detecting, total=1, completed=1)

    alerts_path = out / "alerts.jsonl"
    write_alerts(alerts, alerts_path)
    db_path = out / "tapewatch.db"
    with open_store(db_path) as store:
        store.save(alerts)
    lake = Lake(out / "lake")  # so `tapewatch serve` on the demo's store can chart each alert's market
    lake.write("trades", market.trades)
    pump_labels = market.labels.filter(pl.col("typology") == "pump_and_dump").select("symbol", "event_time")
    symbol_days = coverage_symbol_days(market.trades, max_gap=timedelta(days=1))
    report = evaluate_alerts(
        load_alerts(alerts_path), pump_labels, symbol_days=symbol_days, typology="pump_and_dump"
    )
    episodes = score_episodes(
        alerts, market.labels, symbol_days, typologies=("wash_trading", "spoofing", "layering")
    )
    chart_png = chart_html = None
    if alerts:
        top = max(alerts, key=lambda alert: (alert.score, alert.detected_at))
        chart_png, chart_html = out / "top_alert.png", out / "top_alert.html"
        render_alert_chart(market.trades, top, chart_png, chart_html)
    return DemoResult(
        alerts,
        report,
        episodes,
        alerts_path,
        db_path,
        lake,
        chart_png,
        chart_html,
        market.trades.height,
        market.labels,
    )
