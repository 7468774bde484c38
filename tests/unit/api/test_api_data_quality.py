"""The data-quality view over HTTP: per venue/symbol, trades fetched, not available, and unrepaired."""

from __future__ import annotations

from datetime import UTC, datetime

from tapewatch.io.lake import Lake
from tapewatch.pipeline.gaps import GapLedger
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.sequence import Gap

from .harness import Api

T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
T0_MS = int(T0.timestamp() * 1000)


def lake_with_gaps(lake: Lake) -> None:
    """Bybit kept only its last hour of PUMP/USDT (the hour before was not available), and a live gap
    on Binance's PUMP/BTC stayed unrepaired: ids 101–149 missing between 01:00 and 01:05."""
    Coverage(lake.store, "trades", "bybit", "PUMP/USDT", "trades").add(
        [(T0_MS, T0_MS + 2 * HOUR_MS)], [(T0_MS, T0_MS + HOUR_MS)]
    )
    Coverage(lake.store, "trades", "binance", "PUMP/BTC", "trades").add([(T0_MS, T0_MS + HOUR_MS)])
    micros = int(T0.timestamp() * 1_000_000) + 3_600_000_000
    GapLedger(lake).record("binance", "PUMP/BTC", Gap(micros, micros + 300_000_000, 100, 150))


def test_the_view_lists_each_symbols_covered_not_available_and_unrepaired_spans(sqlite_api: Api) -> None:
    lake_with_gaps(Lake(sqlite_api.lake))
    page = sqlite_api.get("/api/v1/data-quality").json()
    assert [(i["venue"], i["symbol"]) for i in page["items"]] == [
        ("binance", "PUMP/BTC"),
        ("bybit", "PUMP/USDT"),
    ]
    binance, bybit = page["items"]
    assert binance["covered"] == [{"start": "2024-03-01T00:00:00Z", "end": "2024-03-01T01:00:00Z"}]
    assert binance["not_available"] == []
    assert binance["unrepaired"] == [
        {"start": "2024-03-01T01:00:00Z", "end": "2024-03-01T01:05:00Z", "missing_ids": [101, 149]}
    ]
    assert bybit["covered"] == [{"start": "2024-03-01T01:00:00Z", "end": "2024-03-01T02:00:00Z"}]
    assert bybit["not_available"] == [
        {"start": "2024-03-01T00:00:00Z", "end": "2024-03-01T01:00:00Z", "missing_ids": None}
    ]
    assert bybit["unrepaired"] == []


def test_the_view_filters_by_venue_and_symbol_and_pages(sqlite_api: Api) -> None:
    lake_with_gaps(Lake(sqlite_api.lake))
    only = sqlite_api.get("/api/v1/data-quality", params={"venue": "bybit"}).json()["items"]
    assert [i["symbol"] for i in only] == ["PUMP/USDT"]
    one = sqlite_api.get("/api/v1/data-quality", params={"symbol": "PUMP/BTC"}).json()["items"]
    assert [i["venue"] for i in one] == ["binance"]
    first = sqlite_api.get("/api/v1/data-quality", params={"limit": 1}).json()
    assert (len(first["items"]), first["next_offset"]) == (1, 1)
    second = sqlite_api.get("/api/v1/data-quality", params={"limit": 1, "offset": 1}).json()
    assert [i["venue"] for i in second["items"]] == ["bybit"] and second["next_offset"] is None


def test_an_empty_lake_has_nothing_to_show_and_strangers_are_refused(sqlite_api: Api) -> None:
    assert sqlite_api.get("/api/v1/data-quality").json()["items"] == []
    assert sqlite_api.get("/api/v1/data-quality", role=None).status_code == 401
    assert sqlite_api.get("/api/v1/data-quality", params={"limit": 0}).status_code == 422
