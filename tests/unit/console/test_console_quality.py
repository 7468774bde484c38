"""The data-quality page and an alert decided across a known gap, in Chromium against a running server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from unit.api.test_api_data_quality import lake_with_gaps
from unit.console.conftest import LiveServer
from unit.console.console_harness import logged_in, stored_alert

pytestmark = pytest.mark.chromium

NewPage = Callable[[], Page]


def test_the_data_quality_page_shows_each_symbols_coverage_and_gaps(
    live_server: LiveServer, new_page: NewPage
) -> None:
    lake_with_gaps(live_server.lake)
    page = logged_in(new_page, live_server.people["viewer"])
    page.get_by_test_id("nav-data-quality").click()
    rows = page.get_by_test_id("quality-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    binance, bybit = rows.nth(0), rows.nth(1)
    expect(binance).to_contain_text("PUMP/BTC")
    expect(binance.get_by_test_id("quality-unrepaired")).to_have_text(
        "2024-03-01 01:00:00 UTC – 2024-03-01 01:05:00 UTC (trade ids 101–149)"
    )
    expect(binance.get_by_test_id("quality-not-available")).to_have_text("none")
    expect(bybit.get_by_test_id("quality-not-available")).to_have_text(
        "2024-03-01 00:00:00 UTC – 2024-03-01 01:00:00 UTC"
    )
    expect(bybit.get_by_test_id("quality-unrepaired")).to_have_text("none")
    # the bars: binance's covered hour and its gap after it; bybit's fetched hour after the missing one
    expect(binance.locator(".segment.covered")).to_have_count(1)
    expect(binance.locator(".segment.unrepaired")).to_have_count(1)
    assert bybit.locator(".segment.not-available").get_attribute("style").startswith("left: 0%")

    page.get_by_test_id("quality-venue").fill("bybit")
    page.get_by_test_id("quality-filter").get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("PUMP/USDT")


def test_an_alert_decided_across_a_gap_says_so_on_its_page(
    live_server: LiveServer, new_page: NewPage
) -> None:
    gap = {
        "start": "2024-03-01T11:50:00Z",
        "end": "2024-03-01T11:55:00Z",
        "state": "unrepaired",
        "missing_ids": [7, 9],
    }
    across = stored_alert(
        live_server.db, 1, "gapex", "GAP/USDT", evidence={"return": 0.3, "data_gaps": [gap]}
    )
    clean = stored_alert(live_server.db, 2, "gapex", "GAP/USDT")
    page = logged_in(new_page, live_server.people["viewer"])
    page.goto(f"/console/#/alerts/{across.id}")
    expect(page.get_by_test_id("evidence-data-gaps")).to_contain_text("Decided across 1 known gap(s)")
    expect(page.get_by_test_id("evidence-data-gaps")).to_contain_text(
        "2024-03-01 11:50:00 UTC – 2024-03-01 11:55:00 UTC: unrepaired (trade ids 7–9)"
    )
    page.goto(f"/console/#/alerts/{clean.id}")
    expect(page.get_by_test_id("alert-title")).to_be_visible()
    expect(page.get_by_test_id("evidence-data-gaps")).to_have_count(0)
