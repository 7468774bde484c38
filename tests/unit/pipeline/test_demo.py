import json

from rich.console import Console

from tapewatch.cli.summary import print_demo_summary
from tapewatch.config import Settings
from tapewatch.evaluate.scoring import ALL_DETECTORS
from tapewatch.pipeline.demo import run_demo
from tapewatch.store.alert_store import open_store


def test_demo_detects_stores_scores_and_charts(tmp_path):
    result = run_demo(tmp_path, Settings(), symbols=6, hours=24, seed=3)
    lines = [json.loads(line) for line in result.alerts_path.read_text().splitlines()]
    assert len(lines) == len(result.alerts) > 0
    with open_store(result.db_path) as store:
        assert store.count_by() == [(len(result.alerts),)]
    onset = next(score for score in result.report.scores if score.detector == "pump_onset")
    assert onset.events >= 3 and onset.recall >= 0.6 and onset.false_alarms <= 1
    assert result.chart_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plotly" in result.chart_html.read_text()[:200000]
    assert any(score.detector == ALL_DETECTORS for score in result.report.scores)
    episodes = {score.name: score for score in result.episodes}
    # Floors below the recall measured on the families (benchmarks/manipulation_sim.py): wash trading
    # ≥ 0.9 everywhere; L3 spoofing and layering 0.4–1.0 at these rates, so one in two is the floor.
    for typology, floor in (("wash_trading", 0.6), ("spoofing", 0.5), ("layering", 0.5)):
        caught = episodes[typology]
        assert caught.labels and caught.caught >= floor * caught.labels, caught
        assert caught.false_alarms <= 1, caught
    assert (tmp_path / "market" / "labels.csv").is_file()
    top = result.alerts[0]
    assert (
        result.lake.read("trades", venue=top.venue, symbol=top.symbol).height > 0
    )  # for the console's chart
    console = Console(record=True, width=400)
    print_demo_summary(console, result)
    summary = console.export_text()
    assert f"Simulated {result.trades:,} trades with {result.labels.height} injected" in summary
    assert f"tapewatch serve --db {result.db_path}" in summary and "tapewatch[service]" in summary


def test_demo_is_reproducible_and_idempotent_in_the_store(tmp_path):
    first = run_demo(tmp_path, Settings(), symbols=3, hours=12, seed=5)
    again = run_demo(tmp_path, Settings(), symbols=3, hours=12, seed=5)
    assert [a.id for a in first.alerts] == [a.id for a in again.alerts]
    with open_store(first.db_path) as store:
        assert store.count_by() == [(len(first.alerts),)]  # re-running stored nothing twice
