"""Reading over HTTP: alert listing and paging, detail, the market chart data, risk view, instruments."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from conftest import burst, quiet_trades

from tapewatch.io.lake import Lake
from tapewatch.records import BAR_SCHEMA, conform
from tapewatch.store.instruments import Instrument, InstrumentStore
from unit.store.test_store import T0, make_alert

from .harness import Api


def test_listing_filters_pages_and_says_where_the_next_page_starts(api: Api) -> None:
    saved = api.save(
        *(make_alert(minute, symbol="AAA/USDT", score=0.95) for minute in range(5)),
        *(make_alert(minute, symbol="BBB/USDT", venue="kraken", score=0.2) for minute in range(3)),
    )
    newest_first = sorted(saved, key=lambda a: (-a.detected_at.timestamp(), a.id))
    first = api.get("/api/v1/alerts", params={"limit": 3}).json()
    assert [i["id"] for i in first["items"]] == [a.id for a in newest_first[:3]]
    assert (first["limit"], first["offset"], first["next_offset"]) == (3, 0, 3)
    last = api.get("/api/v1/alerts", params={"limit": 3, "offset": 6}).json()
    assert len(last["items"]) == 2 and last["next_offset"] is None

    critical = api.get("/api/v1/alerts", params={"severity": "critical"}).json()["items"]
    assert {i["symbol"] for i in critical} == {"AAA/USDT"} and len(critical) == 5
    both = api.get("/api/v1/alerts", params=[("venue", "kraken"), ("venue", "binance")]).json()
    assert len(both["items"]) == 8
    window = api.get(
        "/api/v1/alerts",
        params={"since": (T0 + timedelta(minutes=7)).isoformat(), "until": "2024-03-01T12:09:00Z"},
    ).json()
    assert sorted(i["detected_at"] for i in window["items"]) == [
        "2024-03-01T12:07:00.000Z",  # AAA and BBB at minute 2, detected 5 minutes later
        "2024-03-01T12:07:00.000Z",
        "2024-03-01T12:08:00.000Z",
    ]
    item = critical[0]
    assert {"evidence", "followup", "status", "case_id", "disposition", "score", "severity"} <= set(item)
    assert "timing" not in item


def test_bad_paging_and_filters_are_422_naming_the_parameter(api: Api) -> None:
    cases = {
        ("limit", "0"): "query parameter 'limit'",
        ("limit", "501"): "query parameter 'limit': Input should be less than or equal to 500",
        ("offset", "-1"): "query parameter 'offset'",
        ("limit", "ten"): "query parameter 'limit': Input should be a valid integer",
        (
            "severity",
            "huge",
        ): "query parameter 'severity': Input should be 'low', 'medium', 'high' or 'critical'",
        ("status", "open"): "query parameter 'status'",
        ("since", "yesterday"): "query parameter 'since'",
        ("since", "9999-12-31T23:59:59-23:59"): "out of range",
        ("symbol", "A\x00B"): "query parameter 'symbol'",
    }
    for (name, value), expected in cases.items():
        response = api.get("/api/v1/alerts", params={name: value})
        assert response.status_code == 422, (name, value, response.text)
        assert expected in response.json()["detail"], response.json()
        assert "\n" not in response.json()["detail"]
    assert api.get("/api/v1/cases", params={"status": "pending"}).status_code == 422
    assert api.get("/api/v1/cases/0").status_code == 422
    assert api.get(f"/api/v1/cases/{2**40}").status_code == 422


def test_sql_looking_input_is_just_text(api: Api) -> None:
    api.save(make_alert(0))
    for text in ("' OR 1=1 --", "x'; DROP TABLE alerts; --", "%", "_"):
        response = api.get("/api/v1/alerts", params={"symbol": text, "typology": text})
        assert response.status_code == 200 and response.json()["items"] == []
        assert api.get(f"/api/v1/alerts/{text}").status_code in (404, 422)
    assert len(api.get("/api/v1/alerts").json()["items"]) == 1


def test_detail_has_evidence_followup_state_and_history(api: Api) -> None:
    (alert,) = api.save(make_alert(0, evidence={"orders": 150, "price_rise": 0.41}))
    api.post(f"/api/v1/alerts/{alert.id}/acknowledge")
    detail = api.get(f"/api/v1/alerts/{alert.id}").json()
    assert detail["evidence"] == {"orders": 150, "price_rise": 0.41}
    assert detail["status"] == "acknowledged" and detail["updated_at"] is not None
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [("alert.acknowledge", "ana")]


def test_market_view_has_trades_and_one_minute_candles_around_the_alert(api: Api) -> None:
    at = T0 + timedelta(hours=2)
    trades = pl.concat(
        [
            quiet_trades("PUMP/USDT", venue="binance", start=T0, hours=4),
            burst(at, symbol="PUMP/USDT", venue="binance"),
        ]
    )
    Lake(api.lake).write("trades", trades)
    (alert,) = api.save(make_alert(120))  # starts at T0 + 2 h, ends 5 minutes later

    view = api.get(f"/api/v1/alerts/{alert.id}/market").json()
    assert view["start"] == "2024-03-01T13:30:00Z" and view["end"] == "2024-03-01T14:35:00Z"
    in_window = trades.filter(
        (pl.col("ts") >= T0 + timedelta(minutes=90)) & (pl.col("ts") < T0 + timedelta(minutes=155))
    )
    assert view["trades_total"] == in_window.height == len(view["trades"]) and view["note"] is None
    assert view["interval"] == "1m" and 10 < len(view["candles"]) <= 65
    assert sum(c["volume"] for c in view["candles"]) == pytest.approx(in_window["amount"].sum())
    assert max(c["high"] for c in view["candles"]) == pytest.approx(in_window["price"].max())


def test_market_view_falls_back_to_stored_candles_then_to_a_note(api: Api) -> None:
    (alert,) = api.save(make_alert(0, symbol="BARS/USDT"))
    empty = api.get(f"/api/v1/alerts/{alert.id}/market").json()
    assert empty["trades"] == [] and empty["candles"] == [] and "nothing to chart" in empty["note"]

    bars = pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=h) for h in (-1, 0)] * 2,
            "venue": "binance",
            "symbol": "BARS/USDT",
            "interval": ["1h", "1h", "1d", "1d"],
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 10.0,
        }
    )
    Lake(api.lake).write("bars", conform(bars, BAR_SCHEMA))
    view = api.get(f"/api/v1/alerts/{alert.id}/market").json()
    assert view["interval"] == "1h" and [c["ts"] for c in view["candles"]] == ["2024-03-01T12:00:00Z"]
    assert view["note"] == "no trades in the lake for this window"


def test_risk_view_counts_a_symbols_alerts_and_scores_them_over_the_last_week(api: Api) -> None:
    api.save(
        make_alert(0, symbol="RISK/USDT", score=0.95),
        make_alert(1, symbol="RISK/USDT", score=0.5),
        make_alert(2, symbol="RISK/USDT", score=0.5, typology="wash_trading", detector="wash_v1"),
        make_alert(3, symbol="SAFE/USDT", score=0.99),
    )
    closed = api.get("/api/v1/alerts", params={"symbol": "RISK/USDT", "severity": "critical"}).json()[
        "items"
    ][0]
    api.post(f"/api/v1/alerts/{closed['id']}/close", {"disposition": "benign", "reason": "listing day"})

    risk = api.get("/api/v1/risk/binance/RISK/USDT").json()
    assert (risk["alerts"], risk["open_alerts"], risk["highest_severity"]) == (3, 2, "critical")
    assert {(c["typology"], c["severity"], c["alerts"]) for c in risk["counts"]} == {
        ("pump_and_dump", "critical", 1),
        ("pump_and_dump", "medium", 1),
        ("wash_trading", "medium", 1),
    }
    assert [r["symbol"] for r in risk["recent"]] == ["RISK/USDT"] * 3
    assert (risk["score"], risk["reasons"]) == (1, [])  # March 2024's alerts are outside today's 7-day window
    encoded = api.get("/api/v1/risk/binance/RISK%2FUSDT").json()
    assert encoded["alerts"] == 3
    later = api.get("/api/v1/risk/binance/RISK/USDT", params={"since": "2024-03-01T12:07:00Z"}).json()
    assert later["alerts"] == 1 and later["highest_severity"] == "medium"
    nothing = api.get("/api/v1/risk/binance/NONE").json()
    assert (nothing["alerts"], nothing["highest_severity"], nothing["recent"]) == (0, None, [])


def test_fresh_alerts_raise_the_score_and_the_table_ranks_symbols(api: Api) -> None:
    now = datetime.now(UTC)
    fresh = [
        make_alert(0, symbol="HOT/USDT", score=0.9).model_copy(
            update={"detected_at": now - timedelta(hours=1)}
        ),
        make_alert(1, symbol="HOT/USDT", typology="spoofing", score=0.8).model_copy(
            update={"detected_at": now - timedelta(hours=2)}
        ),
        make_alert(2, symbol="WARM/USDT", typology="volume_anomaly", score=0.6).model_copy(
            update={"detected_at": now - timedelta(hours=3)}
        ),
    ]
    api.save(*fresh)
    hot = api.get("/api/v1/risk/binance/HOT/USDT").json()
    assert hot["score"] > 50
    assert [reason["kind"] for reason in hot["reasons"]] == ["alerts:pump_and_dump", "alerts:spoofing"]
    assert hot["reasons"][0]["text"].startswith("1 pump-and-dump alert in the last 7 days (strongest 0.90")
    table = api.get("/api/v1/risk", params={"limit": 2}).json()
    assert [(row["symbol"], row["score"]) for row in table] == [
        ("HOT/USDT", hot["score"]),
        ("WARM/USDT", table[1]["score"]),
    ]
    assert 1 < table[1]["score"] < hot["score"]


def test_instruments_are_listed_by_venue_and_status_in_pages(api: Api) -> None:
    store = InstrumentStore(api.store.engine)
    coins = [
        Instrument("binance", f"C{n:02d}/BTC", "crypto", base=f"C{n:02d}", quote="BTC") for n in range(12)
    ]
    store.sync("binance", "crypto", coins)
    store.sync("binance", "crypto", coins[:10])  # two delisted
    store.sync("nasdaq", "stock", [Instrument("nasdaq", "PENY", "stock", name="Penny Corp", last_price=0.5)])

    listed = api.get("/api/v1/instruments", params={"venue": "binance", "limit": 4}).json()
    assert [i["symbol"] for i in listed["items"]] == ["C00/BTC", "C01/BTC", "C02/BTC", "C03/BTC"]
    assert listed["next_offset"] == 4
    delisted = api.get("/api/v1/instruments", params={"status": "delisted"}).json()["items"]
    assert [i["symbol"] for i in delisted] == ["C10/BTC", "C11/BTC"] and delisted[0]["delisted_at"]
    stocks = api.get("/api/v1/instruments", params={"asset_class": "stock", "status": "any"}).json()["items"]
    assert [(i["symbol"], i["name"], i["last_price"]) for i in stocks] == [("PENY", "Penny Corp", 0.5)]
    assert api.get("/api/v1/instruments", params={"asset_class": "bond"}).status_code == 422


def test_list_pages_are_cached_briefly_and_forgotten_on_any_change(api) -> None:
    """The micro-cache (api.list_cache_s) serves a repeated page from memory, never behind this server's changes."""
    (first,) = api.save(make_alert(0))
    feed = api.client.app.state.context.feed
    deadline = time.monotonic() + 10
    while feed.stats.alerts < 1 and time.monotonic() < deadline:  # the feed clears the cache when it sees
        time.sleep(0.01)  # the new alert (polling every 50 ms): let it, before the page is cached
    assert feed.stats.alerts == 1
    assert [a["id"] for a in api.get("/api/v1/alerts").json()["items"]] == [first.id]
    cache = api.client.app.state.context.list_cache
    assert cache.get("") is not None  # the page just served
    api.post(f"/api/v1/alerts/{first.id}/acknowledge", {})
    assert cache.get("") is None  # a change through this server clears it at once
    assert api.get("/api/v1/alerts").json()["items"][0]["status"] == "acknowledged"
