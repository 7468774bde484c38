"""Listing downloads: retries with back-off on 5xx, one-line errors, local paths."""

from __future__ import annotations

import pytest

from tapewatch.errors import InputError
from tapewatch.sources.stocks.fetch import read_text
from unit.sources.stocks.stock_fakes import FIXTURES

NASDAQ = "/dynamic/SymDir/nasdaqlisted.txt"


def test_retries_with_doubling_back_off_until_the_server_answers(listings):
    server, base = listings
    server.fail = 2
    waits: list[float] = []
    text = read_text(base + NASDAQ, retries=3, backoff_s=0.5, sleep=waits.append)
    assert text == (FIXTURES / "nasdaqlisted.txt").read_text()
    assert waits == [0.5, 1.0] and len(server.requests) == 3


def test_gives_up_after_the_retries_with_one_line(listings):
    server, base = listings
    server.fail = 10
    with pytest.raises(InputError) as error:
        read_text(base + NASDAQ, retries=2, backoff_s=0, sleep=lambda _: None)
    assert str(error.value) == f"listing '{base + NASDAQ}': no answer after 3 attempt(s) (HTTP 503)"
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(listings):
    server, base = listings
    with pytest.raises(InputError, match=r"HTTP 404; check the URL \(stocks settings\)"):
        read_text(base + "/nope.txt", retries=3, sleep=lambda _: None)
    assert len(server.requests) == 1


def test_unreachable_host_is_an_input_error():
    with pytest.raises(InputError, match=r"no answer after 1 attempt\(s\) \(ConnectError"):
        read_text("http://127.0.0.1:9/x.txt", retries=0, timeout_s=1)


def test_local_paths_and_file_urls(tmp_path):
    path = FIXTURES / "tsxv.json"
    assert read_text(str(path)) == read_text(f"file://{path}") == path.read_text()
    with pytest.raises(InputError, match=r"listing '.*missing\.txt': cannot read it"):
        read_text(str(tmp_path / "missing.txt"))
