"""The symbol directories in their published layouts: good rows, malformed rows, footers, wrong files."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tapewatch.errors import InputError
from tapewatch.sources.stocks.listings import (
    NASDAQ_HEADER,
    OTHER_HEADER,
    parse_nasdaq_listed,
    parse_other_listed,
    parse_tsx,
)
from tapewatch.sources.stocks.venues import VENUES, parse_exchanges, yahoo_symbol
from unit.sources.stocks.stock_fakes import FIXTURES


def test_nasdaq_listed_rows_test_issues_etfs_and_rejected_lines():
    listing = parse_nasdaq_listed((FIXTURES / "nasdaqlisted.txt").read_text(), "nasdaqlisted.txt")
    by_symbol = {instrument.symbol: instrument for instrument in listing.instruments}
    assert list(by_symbol) == ["AAA", "BIGT", "QQQX", "ZZZQ"]
    assert listing.test_issues == 1  # ZVZZT
    aaa = by_symbol["AAA"]
    assert (aaa.venue, aaa.listing_exchange, aaa.quote, aaa.name) == (
        "nasdaq",
        "NASDAQ",
        "USD",
        "AAA Therapeutics, Inc. - Common Stock",
    )
    assert aaa.details == {
        "etf": False,
        "round_lot": 100,
        "yahoo": "AAA",
        "market_category": "S",
        "financial_status": "D",
    }
    assert by_symbol["QQQX"].details["etf"] is True
    reasons = dict(zip(listing.rejected["row"], listing.rejected["reason"], strict=True))
    assert reasons == {
        6: "expected 8 fields, found 3",
        8: "symbol 'BAD ONE' is not a listed symbol",
        9: "duplicate symbol (first on line 2)",
    }
    assert json.loads(listing.rejected["record"][0]) == {"line": "BROKEN|Only three|fields"}
    assert listing.created == datetime(2024, 3, 7, 18, 1, tzinfo=ZoneInfo("America/New_York"))


def test_other_listed_maps_exchange_codes_to_venues():
    listing = parse_other_listed((FIXTURES / "otherlisted.txt").read_text(), "otherlisted.txt")
    venues = {instrument.symbol: instrument.venue for instrument in listing.instruments}
    assert venues == {
        "AAAE": "arca",
        "ABR$D": "nyse",
        "BBB": "nyse",
        "BRK.B": "nyse",
        "CCCA": "amex",
        "XYZ.WS": "nyse",
    }
    assert [i.symbol for i in listing.for_venue(VENUES["nyse"])] == ["ABR$D", "BBB", "BRK.B", "XYZ.WS"]
    preferred = next(i for i in listing.instruments if i.symbol == "ABR$D")
    assert preferred.details["cqs_symbol"] == "ABRpD" and preferred.details["nasdaq_symbol"] == "ABR-D"
    assert preferred.details["yahoo"] == "ABR-PD"
    assert next(i for i in listing.instruments if i.symbol == "AAAE").details["etf"] is True
    assert listing.test_issues == 1
    assert listing.rejected["reason"].to_list() == [
        "unknown exchange code 'Q' (expected one of N, A, P, Z, V)"
    ]


def test_footer_is_required_because_a_truncated_listing_would_delist_everything():
    text = NASDAQ_HEADER + "\nAAA|AAA Inc.|S|N|N|100|N|N\n"
    with pytest.raises(InputError, match=r"listing 'cut\.txt': no 'File Creation Time:' footer"):
        parse_nasdaq_listed(text, "cut.txt")


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_nasdaq_listed, OTHER_HEADER + "\n", NASDAQ_HEADER),
        (parse_other_listed, "symbol,name\nAAA,AAA Inc.\n", OTHER_HEADER),
        (parse_other_listed, "", OTHER_HEADER),
    ],
)
def test_a_file_in_another_layout_is_one_line_naming_file_and_expected_header(parse, text, expected):
    with pytest.raises(InputError) as error:
        parse(text, "wrong.txt")
    message = str(error.value)
    assert message.startswith("listing 'wrong.txt': found ") and message.endswith(
        f"expected the header '{expected}'"
    )
    assert "\n" not in message


def test_tsx_directory_instruments_suffixes_and_bad_entries():
    listing = parse_tsx((FIXTURES / "tsx.json").read_text(), "tsx.json", VENUES["tsx"])
    assert [(i.symbol, i.details["yahoo"], i.venue) for i in listing.instruments] == [
        ("ABC", "ABC.TO", "tsx"),
        ("ABC.UN", "ABC-UN.TO", "tsx"),
        ("BAM.PR.A", "BAM-PA.TO", "tsx"),
    ]
    assert listing.instruments[1].details["company"] == "ABC" and listing.instruments[1].quote == "CAD"
    assert listing.rejected.select("row", "reason").rows() == [(3, "entry has no symbol")]
    venture = parse_tsx((FIXTURES / "tsxv.json").read_text(), "tsxv.json", VENUES["tsxv"])
    assert [(i.symbol, i.details["yahoo"], i.listing_exchange) for i in venture.instruments] == [
        ("CCC", "CCC.V", "TSXV")
    ]


@pytest.mark.parametrize("text", ["not json", '{"companies": []}', "[1, 2]"])
def test_tsx_wrong_layout_names_the_expected_layout(text):
    with pytest.raises(InputError, match=r"listing 'tsx\.json': not the TSX company-directory layout"):
        parse_tsx(text, "tsx.json", VENUES["tsx"])


@pytest.mark.parametrize(
    ("venue", "symbol", "ticker"),
    [
        ("nasdaq", "AAPL", "AAPL"),
        ("nyse", "BRK.B", "BRK-B"),
        ("nyse", "ABR$D", "ABR-PD"),
        ("nyse", "XYZ.WS", "XYZ-WT"),
        ("nyse", "ABCD.U", "ABCD-U"),
        ("tsx", "ABC.UN", "ABC-UN.TO"),
        ("tsx", "BAM.PR.A", "BAM-PA.TO"),
        ("tsxv", "CCC", "CCC.V"),
    ],
)
def test_yahoo_tickers(venue, symbol, ticker):
    assert yahoo_symbol(VENUES[venue], symbol) == ticker


def test_exchanges_option():
    assert [venue.name for venue in parse_exchanges(" NYSE, tsxv,nyse")] == ["nyse", "tsxv"]
    with pytest.raises(InputError, match="--exchanges 'nyse,lse': expected a comma-separated list of nasdaq"):
        parse_exchanges("nyse,lse")
