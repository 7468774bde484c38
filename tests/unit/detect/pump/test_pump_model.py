"""The trained pump classifier: causal features, a forward-split model, its file, and its detector."""

import zipfile
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.detect.base import DetectorState
from tapewatch.detect.pump.model_features import chunk_features, model_feature_names
from tapewatch.detect.pump.model_file import load_pump_model, save_pump_model
from tapewatch.detect.pump.pump_model import PumpModelDetector
from tapewatch.detect.pump.settings import PumpFeatureSettings, PumpTrainSettings
from tapewatch.errors import InputError
from tapewatch.sources.simulator.market import ccxt_trade_rows
from tapewatch.training.pump_model import (
    LABEL_SCHEMA,
    train_pump_command,
    train_pump_model,
)

CHUNK_S = 5.0
SETTINGS = PumpTrainSettings(min_data_in_leaf=3)
PUMP_AFTER = timedelta(hours=5)
EVENTS = 6


def coin(index: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One coin a day apart from the previous: 8 quiet hours, a sell crowd (not a pump), and a pump."""
    symbol, start = f"C{index}/BTC", START + timedelta(days=index)
    at = start + PUMP_AFTER
    trades = market(
        quiet_trades(symbol, start=start, hours=8, per_minute=3, seed=index),
        burst(start + timedelta(hours=3), symbol=symbol, side="sell", orders=40, rise=0.05, seed=50 + index),
        burst(at, symbol=symbol, orders=100 + 20 * index, rise=0.2 + 0.05 * index, seed=100 + index),
    )
    label = pl.DataFrame({"symbol": [symbol], "announced_at": [at], "onset": [None]}, schema=LABEL_SCHEMA)
    return trades, label


@pytest.fixture(scope="module")
def dataset() -> tuple[pl.DataFrame, pl.DataFrame]:
    coins = [coin(index) for index in range(EVENTS)]
    return market(*(trades for trades, _ in coins)), pl.concat([label for _, label in coins])


@pytest.fixture(scope="module")
def trained(dataset):
    trades, labels = dataset
    return train_pump_model(trades, labels, CHUNK_S, SETTINGS)


def decided(alerts):
    return [alert.model_dump() for alert in alerts]


def test_chunk_features_do_not_change_when_later_trades_change(dataset):
    trades, _ = dataset
    settings = PumpFeatureSettings(chunk_s=CHUNK_S)
    cut = START + timedelta(days=2, hours=5, seconds=10)  # inside C2's pump
    altered = trades.with_columns(
        price=pl.when(pl.col("ts") >= cut).then(pl.col("price") * 3).otherwise(pl.col("price"))
    )
    columns = ["symbol", "start", *model_feature_names(settings)]

    def before_cut(frame: pl.DataFrame) -> pl.DataFrame:
        return chunk_features(frame, settings).filter(pl.col("end") <= cut).select(columns)

    whole = before_cut(trades)
    assert whole.height > 1000
    assert before_cut(trades.filter(pl.col("ts") < cut)).equals(whole)
    assert before_cut(altered).equals(whole)


def test_features_compare_a_pump_chunk_with_the_hours_before(dataset):
    trades, labels = dataset
    chunks = chunk_features(trades, PumpFeatureSettings(chunk_s=CHUNK_S))
    at = labels["announced_at"][3]
    pump = chunks.filter(
        (pl.col("symbol") == "C3/BTC") & (pl.col("start") == at - timedelta(seconds=at.second % 5))
    )
    row = pump.row(0, named=True)
    assert row["rush_orders"] >= 10 and row["buy_share"] == 1.0
    assert row["trades_z_1h"] > 10 and row["orders_ratio_6h"] > 20 and row["price_max_delta"] > 0.05


def test_forward_split_model_flags_the_held_out_pumps(trained, dataset):
    model, card = trained
    trades, labels = dataset
    assert [len(card.train.events), len(card.validation.events), len(card.test.events)] == [3, 1, 2]
    assert card.train.last_chunk < card.validation.first_chunk
    assert card.validation.last_chunk < card.test.first_chunk
    test = card.metrics["test"]
    assert test.positives >= 8 and test.recall >= 0.5 and test.precision >= 0.5
    alerts = PumpModelDetector(model).detect(trades)
    for announced in labels["announced_at"][-2:]:
        near = [a for a in alerts if announced <= a.detected_at <= announced + timedelta(seconds=30)]
        assert len(near) == 1 and near[0].score >= card.threshold


def test_alert_evidence_carries_probability_threshold_and_top_features(trained, dataset):
    model, _ = trained
    alert = PumpModelDetector(model).detect(dataset[0])[-1]
    evidence = alert.evidence
    assert alert.detector == "pump_model" and alert.typology == "pump_and_dump"
    assert evidence["probability"] == alert.score >= evidence["threshold"] == round(model.threshold, 4)
    assert len(evidence["top_features"]) == 5
    assert set(evidence["top_features"][0]) == {"feature", "value", "contribution"}
    assert alert.start < alert.end <= alert.detected_at


def test_stream_with_state_equals_batch(trained, dataset):
    model, _ = trained
    trades, _ = dataset
    detector = PumpModelDetector(model)
    batch = detector.detect(trades)
    assert len(batch) == EVENTS
    state, streamed = DetectorState(), []
    cuts = sorted(trades["ts"].sample(20, seed=1).to_list()) + [trades["ts"].max()]
    for cut in cuts:
        # The engine's tail: what is undecided, and a lookback of decided rows before it for context.
        context = {key: until - detector.lookback for key, until in state.decided_until.items()}
        arrived = trades.filter(pl.col("ts") <= cut)
        tail = DetectorState(decided_until=context).undecided(arrived, ["venue", "symbol"])
        streamed += detector.detect(tail, state)
    assert decided(sorted(streamed, key=lambda a: (a.detected_at, a.symbol))) == decided(batch)


def test_cooldown_keeps_one_alert_per_pump(trained, dataset):
    model, _ = trained
    alerts = PumpModelDetector(model).detect(dataset[0])
    by_symbol = pl.DataFrame({"symbol": [a.symbol for a in alerts], "t": [a.detected_at for a in alerts]})
    gaps = by_symbol.sort("symbol", "t").select(pl.col("t").diff().over("symbol")).drop_nulls()
    assert (gaps["t"] > timedelta(minutes=30)).all()


def test_save_and_load_round_trip(trained, dataset, tmp_path):
    model, card = trained
    path = save_pump_model(model, card, tmp_path / "pump.model")
    loaded, loaded_card = load_pump_model(path)
    chunks = chunk_features(dataset[0], model.features)
    assert np.array_equal(loaded.probabilities(chunks), model.probabilities(chunks))
    assert loaded_card == card and loaded.threshold == card.threshold
    assert card.versions["lightgbm"] and card.split.startswith("forward in time")
    assert card.feature_names == model.feature_names


@pytest.mark.parametrize(
    "content",
    [b"not a zip at all", "zip without members", "zip with a broken model", "zip with a foreign card"],
)
def test_loading_a_corrupt_or_foreign_file_is_one_line_input_error(trained, tmp_path, content):
    model, card = trained
    path = tmp_path / "bad.model"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            if content != "zip without members":
                broken = content == "zip with a broken model"
                archive.writestr(
                    "model.txt", "tree\nnonsense\nend of trees" if broken else model.booster.model_to_string()
                )
                archive.writestr("card.json", card.model_dump_json() if broken else '{"format": "other"}')
    with pytest.raises(InputError) as caught:
        load_pump_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_training_without_positive_labels_is_a_clear_error(dataset):
    trades, labels = dataset
    elsewhere = labels.with_columns(symbol=pl.lit("NOPE/BTC"))
    with pytest.raises(InputError, match="no chunk of the trades falls in a labelled pump window"):
        train_pump_model(trades, elsewhere, CHUNK_S, SETTINGS)


def write_inputs(dataset, tmp_path):
    """The dataset as a ccxt trade CSV folder and an events CSV, as `tapewatch train pump` reads them."""
    trades, labels = dataset
    folder = tmp_path / "trades"
    folder.mkdir()
    ccxt_trade_rows(trades).write_csv(folder / "trades.csv")
    events = tmp_path / "events.csv"
    labels.select(
        pair="symbol", announced_at_utc=pl.col("announced_at").dt.strftime("%Y-%m-%d %H:%M:%S")
    ).write_csv(events)
    return folder, events


def test_train_command_reads_files_and_writes_a_loadable_model(dataset, tmp_path):
    folder, events = write_inputs(dataset, tmp_path)
    card = train_pump_command(folder, events, tmp_path / "out" / "pump.model", CHUNK_S, SETTINGS)
    assert card.features.chunk_s == CHUNK_S and card.metrics["test"].positives > 0
    assert load_pump_model(tmp_path / "out" / "pump.model")[1] == card


def test_train_pump_and_detect_with_the_model_from_the_command_line(dataset, tmp_path):
    import json

    from typer.testing import CliRunner

    from tapewatch.cli.app import app

    folder, events = write_inputs(dataset, tmp_path)
    config = tmp_path / "tapewatch.toml"
    config.write_text("[pump_train]\nmin_data_in_leaf = 3\n")
    model = tmp_path / "pump.model"
    runner = CliRunner()
    trained = runner.invoke(
        app,
        ["train", "pump", "--trades", str(folder), "--labels", str(events), "--chunk", "5s", "-o", str(model)]
        + ["--config", str(config)],
    )
    assert trained.exit_code == 0, trained.output
    assert "test" in trained.output and "threshold" in trained.output and model.is_file()
    alerts = tmp_path / "alerts.jsonl"
    detected = runner.invoke(app, ["detect", str(folder), "--model", str(model), "-o", str(alerts)])
    assert detected.exit_code == 0, detected.output
    from_model = [
        line for line in map(json.loads, alerts.read_text().splitlines()) if line["detector"] == "pump_model"
    ]
    assert from_model and all(0 <= line["evidence"]["probability"] <= 1 for line in from_model)
    missing = runner.invoke(app, ["detect", str(folder), "--model", str(tmp_path / "nope.model")])
    assert missing.exit_code == 2 and "nope.model" in missing.output


def test_the_registry_runs_pump_model_by_name_and_the_stream_gives_the_batch_alerts(
    trained, dataset, tmp_path
):
    from tapewatch.config import Settings, StreamSettings
    from tapewatch.detect.registry import build_detectors, default_detector_names
    from tapewatch.engine.batch import run_batch
    from tapewatch.engine.stream import StreamEngine
    from tapewatch.records import BAR_SCHEMA, empty_frame

    trades, _ = dataset
    settings = Settings(pump_model={"model": save_pump_model(*trained, tmp_path / "pump.model")})
    assert "pump_model" not in default_detector_names() + default_detector_names(candles=True)
    batch = run_batch(build_detectors(settings, ["pump_model"]), trades, empty_frame(BAR_SCHEMA))
    assert len(batch) == EVENTS and {alert.detector for alert in batch} == {"pump_model"}
    engine = StreamEngine(build_detectors(settings, ["pump_model"]), StreamSettings(hold_ms=10**9))
    streamed = {}
    for index, chunk in enumerate(trades.iter_slices(997)):
        engine.push(chunk, arrived_at=float(index))
        streamed |= {item.alert.id: item.alert for item in engine.step(now=float(index))}
    streamed |= {item.alert.id: item.alert for item in engine.finish()}
    assert [alert.model_dump(exclude={"timing"}) for alert in streamed.values()] == [
        alert.model_dump(exclude={"timing"}) for alert in batch
    ]


def test_pump_model_without_a_model_file_is_a_one_line_error_naming_the_setting(tmp_path, monkeypatch):
    from tapewatch.config import Settings, load_settings
    from tapewatch.detect.registry import build_detectors, check_detector_names

    with pytest.raises(InputError, match=r"set \[pump_model\] model") as error:
        build_detectors(Settings(), ["pump_model"])
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"set \[pump_model\] model"):
        check_detector_names(["pump_onset", "pump_model"], Settings())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAPEWATCH_PUMP_MODEL__MODEL", str(tmp_path / "nope.model"))
    with pytest.raises(InputError, match=r"\[pump_model\] model '.*nope.model': no such file"):
        build_detectors(load_settings(), ["pump_model"])


def test_stream_runs_pump_model_named_with_the_model_from_the_config(trained, dataset, tmp_path):
    import json

    from typer.testing import CliRunner

    from tapewatch.cli.app import app

    folder, _ = write_inputs(dataset, tmp_path)
    model = save_pump_model(*trained, tmp_path / "pump.model")
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'[pump_model]\nmodel = "{model}"\n')
    runner = CliRunner()
    batch, streamed = tmp_path / "batch.jsonl", tmp_path / "stream.jsonl"
    detected = runner.invoke(
        app, ["detect", str(folder), "--detector", "pump_model", "-o", str(batch)] + ["--config", str(config)]
    )
    assert detected.exit_code == 0, detected.output
    replayed = runner.invoke(
        app,
        ["stream", "--replay", str(folder / "trades.csv"), "--speed", "max", "--detector", "pump_model"]
        + ["-o", str(streamed), "--no-store", "--config", str(config)],
    )
    assert replayed.exit_code == 0, replayed.output
    by_id = [
        {alert["id"]: alert | {"timing": None} for alert in map(json.loads, path.read_text().splitlines())}
        for path in (batch, streamed)
    ]
    assert len(by_id[0]) == EVENTS and by_id[0] == by_id[1]
    no_model = tmp_path / "empty.toml"
    no_model.write_text("")
    unset = runner.invoke(
        app,
        ["stream", "--replay", str(folder / "trades.csv"), "--detector", "pump_model", "--no-store"]
        + ["--config", str(no_model)],
    )
    assert unset.exit_code == 2 and "[pump_model] model" in unset.output


def test_the_api_runs_pump_model_by_name_when_the_settings_name_a_model(trained, dataset, tmp_path):
    from tapewatch.detect.pump.settings import PumpModelSettings
    from tapewatch.detect.registry import build_detectors
    from tapewatch.engine.batch import run_batch
    from tapewatch.records import BAR_SCHEMA, empty_frame
    from unit.api.harness import api_settings, database, running_api
    from unit.api.test_api_detect import as_rows

    trades, _ = dataset
    model = save_pump_model(*trained, tmp_path / "pump.model")
    settings = api_settings(max_body_bytes=10**8).model_copy(
        update={"pump_model": PumpModelSettings(model=model)}
    )
    expected = run_batch(build_detectors(settings, ["pump_model"]), trades, empty_frame(BAR_SCHEMA))
    body = {"trades": as_rows(trades), "detectors": ["pump_model"]}
    with database("sqlite", tmp_path) as url, running_api(url, tmp_path, settings) as api:
        response = api.post("/api/v1/detect", body, role="viewer")
        assert response.status_code == 200, response.text[:300]
        assert [a["id"] for a in response.json()["alerts"]] == [a.id for a in expected]
        assert len(expected) == EVENTS
    (tmp_path / "no_model").mkdir()
    with database("sqlite", tmp_path / "no_model") as url, running_api(url, tmp_path / "no_model") as api:
        response = api.post("/api/v1/detect", body, role="viewer")
        assert response.status_code == 422 and "[pump_model] model" in response.text
