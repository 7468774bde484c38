"""Fixtures of the stocks tests: the fake Yahoo and listing servers, settings that point at them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import yfinance
from yfinance.data import YfData

from tapewatch.config import StocksSettings
from unit.sources.stocks.stock_fakes import FIXTURES, FakeListings, FakeYahoo, serving

LISTING_PATHS = {
    "/dynamic/SymDir/nasdaqlisted.txt": FIXTURES / "nasdaqlisted.txt",
    "/dynamic/SymDir/otherlisted.txt": FIXTURES / "otherlisted.txt",
    "/json/company-directory/search/tsx/^*": FIXTURES / "tsx.json",
    "/json/company-directory/search/tsxv/^*": FIXTURES / "tsxv.json",
}


@pytest.fixture(autouse=True)
def _quiet_yfinance() -> None:
    """yfinance's own pandas deprecation warnings are not ours to fix (the package filters them too)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance(\.|$)")


@pytest.fixture(scope="session")
def yahoo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeYahoo, str]]:
    """One fake Yahoo for the session; yfinance's caches go to a temporary folder, not the user's."""
    yfinance.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))
    fake = FakeYahoo()
    with serving(fake) as url:
        yield fake, url


@pytest.fixture
def yahoo(yahoo_server: tuple[FakeYahoo, str]) -> FakeYahoo:
    """The fake Yahoo with a fresh request log, and yfinance's in-memory response cache emptied."""
    fake, _ = yahoo_server
    fake.requests.clear()
    YfData.cache_get.cache_clear()  # yfinance caches responses for past date ranges per process
    return fake


@pytest.fixture
def listings() -> Iterator[tuple[FakeListings, str]]:
    """A fake nasdaqtrader.com / tsx.com with the fixture listing files."""
    fake = FakeListings(LISTING_PATHS)
    with serving(fake) as url:
        yield fake, url


@pytest.fixture
def settings(yahoo_server: tuple[FakeYahoo, str], listings: tuple[FakeListings, str]) -> StocksSettings:
    """[stocks] pointing at the fake servers, with no real waiting between retries."""
    _, yahoo_url = yahoo_server
    _, base = listings
    return StocksSettings(
        nasdaq_listed_url=f"{base}/dynamic/SymDir/nasdaqlisted.txt",
        other_listed_url=f"{base}/dynamic/SymDir/otherlisted.txt",
        tsx_url=f"{base}/json/company-directory/search/tsx/%5E*",
        tsxv_url=f"{base}/json/company-directory/search/tsxv/%5E*",
        yahoo_url=yahoo_url,
        http_backoff_s=0.0,
        http_timeout_s=5.0,
        workers=2,
    )
