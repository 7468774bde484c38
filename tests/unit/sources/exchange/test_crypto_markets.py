"""Markets → instruments, market choice, and exchange objects that reach only the configured hosts."""

from __future__ import annotations

import pytest

from tapewatch.config import ExchangeSettings
from tapewatch.errors import InputError
from tapewatch.sources.exchange import make_exchange, sync_markets
from tapewatch.store.alert_store import open_engine
from tapewatch.store.instruments import InstrumentStore
from unit.sources.exchange.crypto_harness import run, settings_for
from unit.sources.exchange.fake_binance import FakeBinance


@pytest.fixture
def instruments(tmp_path):
    engine = open_engine(tmp_path / "store.db")
    yield InstrumentStore(engine)
    engine.dispose()


def test_listing_then_delisting_and_relisting(instruments):
    with FakeBinance(["BTC/USDT", "ETH/USDT", "ETH/BTC"]) as server:
        settings = settings_for(server)
        first, chosen = run(sync_markets(settings, instruments))
        assert sorted(first.added) == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
        assert chosen == []  # nothing asked for: a sync only

        server.delist("ETH/BTC")  # gone from exchangeInfo
        server.list_market("ETH/USDT", status="BREAK")  # still there, but no longer trading
        server.list_market("SOL/USDT")
        second, _ = run(sync_markets(settings, instruments))
        assert second.added == ["SOL/USDT"]
        assert second.delisted == ["ETH/BTC", "ETH/USDT"]
        assert second.unchanged == 1

        server.list_market("ETH/USDT", status="TRADING")
        third, _ = run(sync_markets(settings, instruments))
        assert third.relisted == ["ETH/USDT"]
        assert third.delisted == []

    rows = {row.symbol: row for row in instruments.list(venue="binance", status=None)}
    assert rows["ETH/BTC"].status == "delisted"
    assert rows["ETH/USDT"].status == "listed"
    assert (rows["SOL/USDT"].base, rows["SOL/USDT"].quote, rows["SOL/USDT"].asset_class) == (
        "SOL",
        "USDT",
        "crypto",
    )
    assert rows["BTC/USDT"].details["id"] == "BTCUSDT"
    assert all(path == "/api/v3/exchangeInfo" for path, _ in server.requests), server.requests


def test_choosing_markets_by_symbol_quote_and_all(instruments):
    with FakeBinance(["BTC/USDT", "ETH/USDT", "ETH/BTC", "XRP/BTC"]) as server:
        server.list_market("XRP/BTC", status="BREAK")
        settings = settings_for(server)
        _, by_quote = run(sync_markets(settings, instruments, quote="btc"))
        _, every = run(sync_markets(settings, instruments, all_markets=True))
        _, named = run(sync_markets(settings, instruments, symbols=["ETH/BTC", "btc-usdt", "ETHBTC"]))
        _, mixed = run(sync_markets(settings, instruments, symbols=["ETH/BTC"], quote="USDT"))
    assert by_quote == ["ETH/BTC"]  # XRP/BTC does not trade
    assert every == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
    assert named == ["ETH/BTC", "BTC/USDT"]  # spellings of one market are that market, once
    assert mixed == ["ETH/BTC", "BTC/USDT", "ETH/USDT"]


def test_a_named_market_that_is_unknown_or_halted_is_a_one_line_error(instruments):
    with FakeBinance(["BTC/USDT", "XRP/BTC"]) as server:
        server.list_market("XRP/BTC", status="BREAK")
        settings = settings_for(server)
        with pytest.raises(
            InputError, match=r"--symbols BTC/USDC: not a spot market on binance; did you mean BTC/USDT"
        ):
            run(sync_markets(settings, instruments, symbols=["BTC/USDC"]))
        with pytest.raises(InputError, match=r"--symbols XRP/BTC: not trading on binance \(status BREAK\)"):
            run(sync_markets(settings, instruments, symbols=["XRP/BTC"]))


def test_an_unreachable_exchange_is_a_one_line_error(instruments):
    with FakeBinance() as server:
        settings = settings_for(server)
    # the server is gone: nothing listens on its port any more
    with pytest.raises(InputError, match=r"exchange 'binance': cannot load its markets"):
        run(sync_markets(settings, instruments))


def test_url_overrides_reach_every_api_and_keep_their_paths():
    settings = ExchangeSettings(rest_url="http://127.0.0.1:9/", ws_url="ws://127.0.0.1:9/stream")
    exchange = make_exchange(settings, pro=True)
    api = exchange.urls["api"]
    rest = {key: url for key, url in api.items() if isinstance(url, str)}
    assert rest["public"] == "http://127.0.0.1:9/api/v3"
    assert rest["sapi"] == "http://127.0.0.1:9/sapi/v1"
    assert all(url.startswith("http://127.0.0.1:9/") for url in rest.values()), rest
    assert api["ws"]["spot"] == "ws://127.0.0.1:9/stream"
    assert exchange.enableRateLimit is True
    assert exchange.options["watchTradesForSymbols"]["name"] == "aggTrade"


def test_settings_options_merge_over_the_venue_defaults():
    settings = ExchangeSettings(ccxt_options={"fetchMarkets": {"types": ["spot", "linear"]}}, rate_limit_ms=7)
    exchange = make_exchange(settings)
    assert exchange.options["fetchMarkets"]["types"] == ["spot", "linear"]
    assert exchange.options["fetchCurrencies"] is False  # the other defaults stay
    assert exchange.rateLimit == 7


def test_an_unknown_exchange_is_a_one_line_error_with_suggestions():
    with pytest.raises(InputError, match=r"--exchange 'binanse': not a ccxt exchange; did you mean binance"):
        make_exchange(ExchangeSettings(exchange="binanse"))
