import re
from datetime import timedelta

import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.cli.app import DETECTOR_HELP
from tapewatch.config import Settings
from tapewatch.detect.base import FinalAlerts, as_bar_detector
from tapewatch.detect.registry import CANDLE_INPUT, DETECTORS, OPT_IN, build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.engine.stream import StreamEngine
from tapewatch.errors import InputError
from tapewatch.io.derive import trades_to_bars
from tapewatch.records import BAR_SCHEMA, empty_frame


def test_every_registered_detector_runs_and_pump_alerts_come_in_detection_order():
    at = START + timedelta(hours=10)
    trades = market(
        quiet_trades("AAA/BTC", hours=14, per_minute=1),
        quiet_trades("BBB/BTC", hours=14, per_minute=1, seed=4),
        burst(at, symbol="BBB/BTC", orders=400, seconds=60, rise=0.5),
        burst(at - timedelta(hours=3), symbol="AAA/BTC", orders=400, seconds=60, rise=0.5, seed=2),
    )
    seen = []
    defaults = build_detectors(Settings())
    alerts = run_batch(defaults, trades, empty_frame(BAR_SCHEMA), on_detector=seen.append)
    assert [d.name for d in seen] == [name for name in DETECTORS if name not in OPT_IN | CANDLE_INPUT]
    assert {alert.detector for alert in alerts} == {"pump_onset"}
    named = build_detectors(Settings(), ["pump_onset", "kamps_kleinberg"])
    assert {alert.detector for alert in run_batch(named, trades, empty_frame(BAR_SCHEMA))} == {
        "pump_onset",
        "kamps_kleinberg",
    }
    assert [alert.detected_at for alert in alerts] == sorted(alert.detected_at for alert in alerts)
    assert len({alert.id for alert in alerts}) == len(alerts)


def test_bars_given_as_input_feed_bar_detectors_and_duplicate_alerts_collapse():
    at = START + timedelta(hours=10)
    trades = market(quiet_trades(hours=14, per_minute=1), burst(at, orders=400, seconds=60, rise=0.5))
    bars = trades_to_bars(trades, "1h").drop("last_trade_ts")
    detectors = build_detectors(Settings(), ["kamps_kleinberg"])
    from_bars = run_batch(detectors, trades.clear(), bars)
    both = run_batch(detectors, trades, bars)
    assert len(from_bars) == 1
    assert len(both) == 1  # the same candle from both inputs has the same id


def test_opt_in_detectors_run_only_when_named():
    assert not OPT_IN & {d.name for d in build_detectors(Settings())}
    assert not OPT_IN & {d.name for d in build_detectors(Settings(), candles=True)}
    without_a_model = sorted(
        OPT_IN - {"pump_model"}
    )  # it needs a model file: tests/unit/detect/pump/test_pump_model.py
    assert [d.name for d in build_detectors(Settings(), without_a_model)] == without_a_model


def test_the_cli_help_names_every_opt_in_detector_and_no_default_one():
    named = set(
        re.findall(r"[a-z]+(?:_[a-z0-9]+)+", DETECTOR_HELP.split("Default: all but the opt-in ones")[1])
    )
    assert OPT_IN <= named
    assert not named & {d.name for d in build_detectors(Settings(), candles=True)}


def test_candle_anomaly_rules_are_default_only_on_candle_input():
    assert not CANDLE_INPUT & {d.name for d in build_detectors(Settings())}
    assert CANDLE_INPUT <= {d.name for d in build_detectors(Settings(), candles=True)}


def test_unknown_detector_name_is_a_user_error():
    with pytest.raises(InputError, match="kamps_kleinberg"):
        build_detectors(Settings(), ["nope"])


def test_conform_keeps_an_empty_frame_empty():
    import polars as pl

    from tapewatch.records import TRADE_SCHEMA, conform

    assert conform(pl.DataFrame(), TRADE_SCHEMA).shape == (0, len(TRADE_SCHEMA))


class _BarsWithoutASize(FinalAlerts):
    """A detector that says it reads candles but not which: a programming error, not a default of 1h."""

    name = "bars_without_a_size"
    typology = "test"
    needs = "bars"
    lookback = timedelta(hours=1)

    def detect(self, frame, state=None):
        return []


def test_both_engines_refuse_a_bar_detector_that_does_not_say_its_candles():
    trades = market(quiet_trades(hours=2, per_minute=1))
    kamps = build_detectors(Settings(), ["kamps_kleinberg"])[0]
    assert as_bar_detector(kamps) is kamps and as_bar_detector(build_detectors(Settings())[0]) is None
    with pytest.raises(TypeError, match="bars_without_a_size: needs bars but has no `interval`"):
        run_batch([_BarsWithoutASize()], trades, empty_frame(BAR_SCHEMA))
    with pytest.raises(TypeError, match="bars_without_a_size"):
        StreamEngine([_BarsWithoutASize()])
