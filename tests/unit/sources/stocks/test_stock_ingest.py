"""One stocks run: listings kept in step with the instruments table, facts from Yahoo, penny selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.sources.stocks.job import IngestOptions, StocksIngest
from tapewatch.sources.stocks.venues import parse_exchanges
from tapewatch.sources.stocks.yahoo import YahooClient
from tapewatch.store.alert_store import open_engine
from tapewatch.store.instruments import InstrumentStore
from unit.sources.stocks.stock_fakes import FIXTURES

DAY1 = datetime(2024, 3, 7, 23, 0, tzinfo=UTC)
DAY2 = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)
NASDAQ = "/dynamic/SymDir/nasdaqlisted.txt"


@pytest.fixture
def store(tmp_path):
    engine = open_engine(tmp_path / "tapewatch.db")
    yield InstrumentStore(engine)
    engine.dispose()


def ingest(settings, store, tmp_path, exchanges="nasdaq", **options) -> StocksIngest:
    yahoo = YahooClient(settings.yahoo_url, retries=0)
    return StocksIngest(
        settings,
        Lake(tmp_path / "lake"),
        store,
        yahoo,
        IngestOptions(venues=parse_exchanges(exchanges), **options),
    )


def test_sync_adds_and_delists_across_two_listing_versions(settings, store, listings, tmp_path):
    server, _ = listings
    job = ingest(settings, store, tmp_path)
    first = job.run(DAY1)
    assert sorted(first.catalog.synced["nasdaq"].added) == ["AAA", "BIGT", "QQQX", "ZZZQ"]
    assert (first.catalog.rejected, first.catalog.test_issues) == (3, 1)
    dead = [json.loads(line) for line in first.catalog.dead_letter_path.read_text().splitlines()]
    assert [(d["row"], d["record"]["line"][:6]) for d in dead] == [
        (6, "BROKEN"),
        (8, "BAD ON"),
        (9, "AAA|AA"),
    ]

    server.files[NASDAQ] = FIXTURES / "nasdaqlisted_next.txt"
    second = job.run(DAY2)
    sync = second.catalog.synced["nasdaq"]
    assert (sync.added, sync.delisted, sync.unchanged) == (["NEWCO"], ["BIGT"], 3)
    gone = store.list("nasdaq", status="delisted")
    assert [(row.symbol, row.delisted_at) for row in gone] == [("BIGT", DAY2)]
    assert second.catalog.dead_letter_path is None


def test_facts_are_stored_and_penny_stocks_selected(settings, store, tmp_path, yahoo):
    job = ingest(settings, store, tmp_path, exchanges="nasdaq,nyse")
    report = job.run(DAY2, interval="1d")
    rows = {row.symbol: row for row in store.list(asset_class="stock")}
    assert (rows["AAA"].last_price, rows["AAA"].avg_volume, rows["AAA"].market_cap) == (
        1.2974,
        184000,
        24.5e6,
    )
    assert rows["BRK.B"].details["yahoo"] == "BRK-B" and rows["BRK.B"].last_price == 411.5
    assert rows["ABR$D"].last_price is None  # Yahoo did not quote it
    assert (report.instruments, report.with_facts, report.penny, report.unknown) == (8, 6, 3, 2)
    assert sorted(job.tickers["symbol"]) == ["AAA", "BBB", "ZZZQ"]
    assert report.bars.written == 10 and report.bars.no_data == ["nasdaq:ZZZQ"]


def test_max_price_and_all_stocks_widen_the_selection(settings, store, tmp_path, yahoo):
    wider = ingest(settings, store, tmp_path, max_price=30.0, limit=3)
    report = wider.run(DAY2)
    assert report.instruments == 3  # AAA, BIGT, QQQX: the first three listed
    assert wider.tickers["symbol"].to_list() == ["AAA", "QQQX"]  # under $30; BIGT is $151
    everything = ingest(settings, store, tmp_path, penny=False)
    everything.run(DAY2)
    assert everything.tickers.height == 4


def test_a_quote_outage_keeps_the_stored_facts(settings, store, tmp_path, yahoo):
    ingest(settings, store, tmp_path).run(DAY1)
    yahoo.quotes_down = True
    report = ingest(settings, store, tmp_path).run(DAY2)
    assert report.penny == 2 and store.list("nasdaq")[0].last_price == 1.2974
    errors = report.catalog.facts_errors
    assert len(errors) == 1 and "4 ticker(s) from AAA: HTTPError" in errors[0]
    assert report.bars.written == 1  # only Friday's bar is new: Monday to Thursday came on day 1


def test_listing_failures_stop_a_run_but_not_the_live_close_job(settings, store, listings, tmp_path):
    server, _ = listings
    server.fail = 100
    job = ingest(settings.model_copy(update={"http_retries": 1}), store, tmp_path, exchanges="nasdaq,tsxv")
    with pytest.raises(InputError, match=r"nasdaqlisted\.txt': no answer after 2 attempt\(s\) \(HTTP 503\)"):
        job.run(DAY1)
    report = job.run(DAY1, strict=False)
    assert set(report.catalog.not_synced) == {"nasdaq", "tsxv"} and report.catalog.synced == {}


def test_an_empty_listing_never_delists_a_whole_venue(settings, store, listings, tmp_path):
    server, _ = listings
    job = ingest(settings, store, tmp_path, exchanges="tsxv")
    assert job.run(DAY1).catalog.synced["tsxv"].added == ["CCC"]
    empty = tmp_path / "empty.json"
    empty.write_text('{"last_updated": 1709852400, "length": 0, "results": []}')
    server.files["/json/company-directory/search/tsxv/^*"] = empty
    report = job.run(DAY2)
    assert "lists nothing for tsxv" in report.catalog.not_synced["tsxv"]
    assert [row.symbol for row in store.list("tsxv")] == ["CCC"]


def test_a_venue_without_a_listing_url_is_a_one_line_error(settings, store, tmp_path):
    job = ingest(settings.model_copy(update={"tsx_url": ""}), store, tmp_path, exchanges="tsx")
    with pytest.raises(
        InputError, match=r"listing for tsx: no URL or path in the settings \(stocks\.tsx_url\)"
    ):
        job.run(DAY1)


def test_facts_still_refresh_while_a_listing_is_down(settings, store, listings, tmp_path, yahoo):
    server, _ = listings
    yahoo.quotes_down = True
    ingest(settings, store, tmp_path).run(DAY1)
    assert store.list("nasdaq")[0].last_price is None
    yahoo.quotes_down = False
    server.fail = 100
    report = ingest(settings.model_copy(update={"http_retries": 0}), store, tmp_path).run(DAY2, strict=False)
    assert "nasdaq" in report.catalog.not_synced
    assert store.list("nasdaq")[0].last_price == 1.2974 and report.penny == 2
