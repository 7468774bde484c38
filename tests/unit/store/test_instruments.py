"""The instruments table on SQLite and the real PostgreSQL server (fixtures from test_store)."""

from datetime import UTC, datetime

import pytest

from tapewatch.store.alert_store import open_engine
from tapewatch.store.instruments import Instrument, InstrumentStore
from unit.store.test_store import BACKENDS, postgres_url  # noqa: F401  (session fixture: a fresh PostgreSQL schema)

T1, T2, T3 = (datetime(2024, 1, day, tzinfo=UTC) for day in (1, 2, 3))


@pytest.fixture(params=BACKENDS)
def instruments(request, tmp_path):
    url = tmp_path / "t.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = open_engine(url)
    yield InstrumentStore(engine)
    engine.dispose()


def coin(symbol, **facts):
    base, quote = symbol.split("/")
    return Instrument(venue="binance", symbol=symbol, asset_class="crypto", base=base, quote=quote, **facts)


def test_listing_sync_adds_delists_and_relists(instruments):
    first = instruments.sync("binance", "crypto", [coin("AAA/BTC"), coin("BBB/BTC")], now=T1)
    assert sorted(first.added) == ["AAA/BTC", "BBB/BTC"] and not first.delisted
    second = instruments.sync("binance", "crypto", [coin("AAA/BTC"), coin("CCC/BTC")], now=T2)
    assert second.added == ["CCC/BTC"] and second.delisted == ["BBB/BTC"] and second.unchanged == 1
    assert [row.symbol for row in instruments.list("binance")] == ["AAA/BTC", "CCC/BTC"]
    gone = [row for row in instruments.list("binance", status="delisted")]
    assert [(row.symbol, row.delisted_at) for row in gone] == [("BBB/BTC", T2)]
    third = instruments.sync("binance", "crypto", [coin("AAA/BTC"), coin("BBB/BTC"), coin("CCC/BTC")], now=T3)
    assert third.relisted == ["BBB/BTC"]
    rows = {row.symbol: row for row in instruments.list("binance", status=None)}
    assert rows["BBB/BTC"].status == "listed" and rows["BBB/BTC"].delisted_at is None
    assert rows["AAA/BTC"].first_seen == T1 and rows["AAA/BTC"].last_seen == T3


def test_facts_update_and_missing_facts_keep_stored_values(instruments):
    instruments.sync("binance", "crypto", [coin("AAA/BTC", last_price=1.0, name="Aaa")], now=T1)
    instruments.sync("binance", "crypto", [coin("AAA/BTC")], now=T2)
    instruments.update_facts("binance", "AAA/BTC", market_cap=5e6)
    (row,) = instruments.list("binance")
    assert (row.name, row.last_price, row.market_cap) == ("Aaa", 1.0, 5e6)
    with pytest.raises(ValueError, match="colour"):
        instruments.update_facts("binance", "AAA/BTC", colour="red")


def test_venues_and_asset_classes_are_separate(instruments):
    instruments.sync("binance", "crypto", [coin("AAA/BTC")], now=T1)
    stock = Instrument(venue="nasdaq", symbol="ABCD", asset_class="stock", listing_exchange="NASDAQ")
    instruments.sync("nasdaq", "stock", [stock], now=T1)
    result = instruments.sync("binance", "crypto", [], now=T2)
    assert result.delisted == ["AAA/BTC"]
    assert [row.symbol for row in instruments.list(asset_class="stock")] == ["ABCD"]
