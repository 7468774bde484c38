"""`ingest stocks` end to end through Typer, against the fake listing servers and the fake Yahoo."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from tapewatch.cli.app import user_errors
from tapewatch.cli.stocks import ingest_stocks
from tapewatch.io.lake import Lake
from tapewatch.sources.stocks import schedule
from tapewatch.store.alert_store import open_engine
from tapewatch.store.instruments import InstrumentStore
from unit.sources.stocks.stock_fakes import FIXTURES, FakeClock

AFTER_CLOSE = datetime(2024, 3, 8, 21, 30, tzinfo=UTC)  # Friday 16:30 in New York
MORNING = datetime(2024, 3, 8, 14, 35, 5, tzinfo=UTC)  # Friday 09:35:05 in New York

app = typer.Typer()
app.command("stocks")(user_errors(ingest_stocks))


@app.callback()
def ingest() -> None:
    """A stand-in for the `tapewatch ingest` group."""


runner = CliRunner()


@pytest.fixture
def config(settings, tmp_path):
    path = tmp_path / "tapewatch.toml"
    fields = ("nasdaq_listed_url", "other_listed_url", "tsx_url", "tsxv_url", "yahoo_url")
    lines = [f'{name} = "{getattr(settings, name)}"' for name in fields]
    path.write_text("[stocks]\nhttp_backoff_s = 0\nworkers = 2\n" + "\n".join(lines) + "\n")
    return path


def set_option(config, name, value):
    """Change one string setting of the [stocks] section in the test's config file."""
    lines = config.read_text().splitlines()
    config.write_text(
        "\n".join(f'{name} = "{value}"' if line.startswith(name + " ") else line for line in lines)
    )


def invoke(config, tmp_path, *extra, start=AFTER_CLOSE, stop_after=None):
    clock = FakeClock(start, stop_after=stop_after)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schedule, "CLOCK", clock)
        return runner.invoke(
            app,
            [
                "stocks",
                "--config",
                str(config),
                "--lake",
                str(tmp_path / "lake"),
                "--db",
                str(tmp_path / "tw.db"),
                "--exchanges",
                "nasdaq,nyse,amex,tsxv",
                *extra,
            ],
        )


def test_first_run_lists_filters_and_stores_bars_then_resumes(config, tmp_path, yahoo):
    result = invoke(config, tmp_path)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "nasdaq: 4 listed, 4 added, 0 delisted" in err
    assert "nyse: 4 listed, 4 added" in err and "amex: 1 listed" in err and "tsxv: 1 listed" in err
    assert "4 listing line(s) rejected → " in err and "2 test issue(s) skipped" in err
    assert "10 instrument(s), 8 with a price: 5 penny candidate(s), 2 unknown" in err
    assert (
        "bars 1d: 5 ticker(s), 20 new bar(s), 0 already up to date; 1 without data on Yahoo (nasdaq:ZZZQ)"
        in err
    )
    bars = Lake(tmp_path / "lake").read("bars")
    assert sorted(bars["symbol"].unique()) == ["AAA", "BBB", "CCC", "CCCA"]
    assert bars.group_by("symbol").len()["len"].to_list() == [5, 5, 5, 5]
    assert bars.filter(pl.col("symbol") == "CCC")["venue"].unique().to_list() == ["tsxv"]
    engine = open_engine(tmp_path / "tw.db")
    rows = {row.symbol: row for row in InstrumentStore(engine).list(asset_class="stock")}
    engine.dispose()
    assert rows["CCCA"].last_price == 0.5412 and rows["QQQX"].details["etf"] is True

    again = invoke(config, tmp_path)
    assert again.exit_code == 0, again.output
    assert "nasdaq: 4 listed, 0 added, 0 delisted" in again.stderr
    assert "bars 1d: 5 ticker(s), 0 new bar(s), 4 already up to date" in again.stderr


def test_limit_and_all_stocks(config, tmp_path, yahoo):
    result = invoke(config, tmp_path, "--all-stocks", "--limit", "2", "--exchanges", "nyse")
    assert result.exit_code == 0, result.output
    assert "2 instrument(s)" in result.stderr
    assert "bars 1d: 2 ticker(s), 5 new bar(s)" in result.stderr  # ABR$D has no data, BBB has 5 bars
    assert "(nyse:ABR$D (ABR-PD))" in result.stderr


def test_every_polls_intraday_bars_until_interrupted(config, tmp_path, yahoo):
    result = invoke(
        config, tmp_path, "--every", "1m", "--exchanges", "nasdaq,nyse", start=MORNING, stop_after=1
    )
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "bars 1d: 3 ticker(s), 8 new bar(s)" in err  # Friday's daily bar is not final at 09:35
    assert "polling 1m bars every 0:01:00 (Ctrl-C stops)" in err
    assert "2024-03-08 14:35:05Z bars 1m: 3 ticker(s), 10 new bar(s)" in err
    assert "2024-03-08 14:36:05Z bars 1m: 3 ticker(s), 2 new bar(s)" in err
    assert "stopped; polls wrote 12 new bar(s) in all" in err
    minutes = Lake(tmp_path / "lake").read("bars").filter(pl.col("interval") == "1m")
    assert minutes.height == 12


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--interval", "1mo"), "--interval '1mo': expected one of"),
        (("--exchanges", "lse"), "--exchanges 'lse': expected a comma-separated list"),
        (("--since", "yesterday"), "--since 'yesterday': expected a date like 2024-03-01"),
        (("--period", "1mo", "--since", "2024-01-01"), "--period and --since: give one of them"),
        (("--every", "soon"), "--every 'soon': expected a number with a unit"),
    ],
)
def test_bad_options_are_one_line_errors(config, tmp_path, option, message):
    result = invoke(config, tmp_path, *option)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_listing_in_the_wrong_layout_is_a_one_line_error(config, tmp_path):
    config.write_text(config.read_text().replace("nasdaqlisted.txt", "otherlisted.txt"))
    result = invoke(config, tmp_path, "--exchanges", "nasdaq")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert (
        line.startswith("error: listing 'http://127.0.0.1:")
        and "otherlisted.txt': found 'ACT Symbol|" in line
    )
    assert line.endswith(
        "expected the header 'Symbol|Security Name|Market Category|Test Issue|Financial "
        "Status|Round Lot Size|ETF|NextShares'"
    )


def test_a_local_listing_file_works_too(config, tmp_path, yahoo):
    set_option(config, "tsxv_url", FIXTURES / "tsxv.json")
    result = invoke(config, tmp_path, "--exchanges", "tsxv")
    assert result.exit_code == 0, result.output
    assert "tsxv: 1 listed, 1 added" in result.stderr and "5 new bar(s)" in result.stderr


def test_a_venue_without_a_listing_url_says_which_setting(config, tmp_path):
    set_option(config, "tsx_url", "")
    result = invoke(config, tmp_path, "--exchanges", "tsx")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: listing for tsx: no URL or path in the settings (stocks.tsx_url)"
