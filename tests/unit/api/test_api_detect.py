"""POST /detect: the batch detectors on rows sent over HTTP, the same alerts as the engine, bad rows named."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from conftest import START, burst, market, quiet_trades

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.records import BAR_SCHEMA, empty_frame
from unit.engine.test_stream import busy_market

from .harness import Api


def as_rows(trades: pl.DataFrame, epoch_ms: bool = False) -> list[dict]:
    """Trades as a client would send them: ISO text times, or epoch milliseconds."""
    times = (
        trades["ts"].dt.epoch("ms").to_list()
        if epoch_ms
        else [t.isoformat().replace("+00:00", "Z") for t in trades["ts"].to_list()]
    )
    return [
        {"ts": ts, "venue": v, "symbol": s, "price": p, "amount": a, "side": side}
        for ts, v, s, p, a, side in zip(
            times, trades["venue"], trades["symbol"], trades["price"], trades["amount"], trades["side"]
        )
    ]


def test_a_pump_in_posted_trades_is_found_as_the_batch_engine_finds_it(api: Api) -> None:
    trades = busy_market()
    expected = run_batch(build_detectors(Settings()), trades, empty_frame(BAR_SCHEMA))
    response = api.post("/api/v1/detect", {"trades": as_rows(trades)}, role="viewer")
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    assert result["trades"] == trades.height and result["bars"] == 0 and result["stored"] is None
    assert [a["id"] for a in result["alerts"]] == [a.id for a in expected]
    assert {a["detector"] for a in result["alerts"]} == {"pump_onset"}
    assert api.get("/api/v1/alerts").json()["items"] == []  # not stored unless asked


def test_epoch_millisecond_times_read_as_the_file_readers_read_them(api: Api) -> None:
    trades = busy_market().with_columns(pl.col("ts").dt.truncate("1ms"))
    expected = run_batch(build_detectors(Settings()), trades, empty_frame(BAR_SCHEMA))
    result = api.post("/api/v1/detect", {"trades": as_rows(trades, epoch_ms=True)}, role="viewer").json()
    assert [a["id"] for a in result["alerts"]] == [a.id for a in expected] and len(expected) >= 4


def test_detect_can_store_its_alerts_for_an_analyst_and_runs_only_the_detectors_named(api: Api) -> None:
    at = START + timedelta(hours=4)
    trades = market(quiet_trades(), burst(at))
    body = {"trades": as_rows(trades), "detectors": ["pump_onset"], "store": True}
    result = api.post("/api/v1/detect", body, role="analyst").json()
    assert result["alerts"] and {a["detector"] for a in result["alerts"]} == {"pump_onset"}
    assert result["stored"] == len(result["alerts"])
    listed = api.get("/api/v1/alerts").json()["items"]
    assert {i["id"] for i in listed} == {a["id"] for a in result["alerts"]}
    again = api.post("/api/v1/detect", body, role="analyst").json()
    assert again["stored"] == 0  # idempotent on the alert ids


def test_bars_are_accepted_with_the_requests_interval(api: Api) -> None:
    hours = [START + timedelta(hours=h) for h in range(30)]
    rows = [
        {
            "ts": t.isoformat(),
            "symbol": "KK/USDT",
            "open": 1,
            "high": 1.02,
            "low": 0.99,
            "close": 1,
            "volume": 100,
        }
        for t in hours
    ]
    rows[-1] |= {"high": 1.5, "close": 1.4, "volume": 2000}  # price and volume both break out
    result = api.post(
        "/api/v1/detect",
        {"bars": rows, "interval": "1h", "venue": "kraken", "detectors": ["kamps_kleinberg"]},
        role="viewer",
    ).json()
    assert result["bars"] == 30
    assert [(a["detector"], a["venue"], a["symbol"]) for a in result["alerts"]] == [
        ("kamps_kleinberg", "kraken", "KK/USDT")
    ]


def test_bad_rows_are_422_naming_the_row_and_the_field(api: Api) -> None:
    good = {"ts": "2024-03-01T00:00:00Z", "symbol": "A/B", "price": 1.0, "amount": 2.0}
    cases = [
        ({"trades": [good, good | {"price": -1}]}, "body: trades[1]: price is not a positive number"),
        ({"trades": [good | {"price": "abc"}]}, "body: trades[0].price: Input should be a valid number"),
        ({"trades": [good | {"ts": "last tuesday"}]}, "body: trades[0].ts: expected an ISO-8601 time"),
        ({"trades": [good | {"ts": 10**30}]}, "body: trades[0].ts: expected an ISO-8601 time"),
        ({"trades": [good | {"side": "long"}]}, "body: trades[0]: unknown side 'long' (expected buy/sell)"),
        ({"trades": [{k: v for k, v in good.items() if k != "symbol"}]}, "body: trades[0].symbol: required"),
        ({"trades": [good, good, good | {"amount": None}]}, "body: trades[2].amount"),
        (
            {"bars": [{"ts": 0, "symbol": "A", "open": 1, "high": 1, "low": 2, "close": 1, "volume": 1}]},
            "body: bars[0]: high is below low",
        ),
        ({"bars": [], "trades": []}, "expected at least one row in 'trades' or 'bars'"),
        ({"trades": [good], "detectors": ["magic"]}, "body: detectors[0]: Input should be"),
        ({"trades": [good], "interval": "fortnight"}, "body: interval"),
    ]
    for body, expected in cases:
        response = api.post("/api/v1/detect", body, role="viewer")
        assert response.status_code == 422, (body, response.text)
        assert expected in response.json()["detail"], response.json()["detail"]
    invalid_json = api.client.post(
        "/api/v1/detect",
        content=b'{"trades": [',
        headers=api.headers("viewer") | {"content-type": "application/json"},
    )
    assert invalid_json.status_code == 422 and "not valid JSON" in invalid_json.json()["detail"]


def test_posted_spellings_of_one_pair_are_one_symbol(api: Api) -> None:
    trades = market(quiet_trades(), burst(START + timedelta(hours=4)))
    spelled = [
        row | {"symbol": spelling}
        for row, spelling in zip(
            as_rows(trades), ["nuls/btc", "NULSBTC", "nuls-btc", "NULS/BTC"] * trades.height, strict=False
        )
    ]
    result = api.post("/api/v1/detect", {"trades": spelled}, role="viewer").json()
    expected = run_batch(
        build_detectors(Settings()), trades.with_columns(symbol=pl.lit("NULS/BTC")), empty_frame(BAR_SCHEMA)
    )
    assert [a["id"] for a in result["alerts"]] == [a.id for a in expected] and expected
    assert {a["symbol"] for a in result["alerts"]} == {"NULS/BTC"}
