"""The analyst console in Chromium against a running server: live feed, chart, cases, roles, log-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from unit.console.conftest import LiveServer
from unit.console.console_harness import (
    alert_row,
    expect_logged_in,
    log_in_with_key,
    log_in_with_password,
    logged_in,
    pump_alert,
    store_alerts,
    stored_alert,
)
from unit.store.test_store import make_alert

pytestmark = pytest.mark.chromium

NewPage = Callable[[], Page]


def test_a_detected_pump_appears_in_the_open_feed_and_its_chart_is_drawn(
    live_server: LiveServer, new_page: NewPage
) -> None:
    analyst = live_server.people["analyst"]
    page = logged_in(new_page, analyst)
    expect(page.get_by_test_id("feed-summary")).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    alert = pump_alert(live_server.lake, live_server.db, "LIVE/BTC")

    row = alert_row(page, alert)
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-live", "true")  # pushed over the WebSocket, not loaded
    expect(page.get_by_test_id("feed-announcer")).to_contain_text("LIVE/BTC")
    assert page.evaluate("window.sameDocument") is True
    expect(page.get_by_test_id("alert-row").first).to_have_attribute("data-alert-id", alert.id)

    row.get_by_test_id("alert-link").click()
    expect(page).to_have_url(re.compile(rf"#/alerts/{alert.id}$"))
    expect(page.get_by_test_id("alert-title")).to_contain_text("LIVE/BTC")
    expect(page.get_by_test_id("evidence-sentences")).to_contain_text("taker orders arrived in 3 s")
    chart = page.get_by_test_id("alert-chart")
    expect(chart).to_have_attribute("data-state", "rendered")
    # Plotly drew SVG: the candles, the volume bars and the buy trades are traces
    assert chart.locator(".main-svg .trace").count() >= 3
    expect(chart.locator(".main-svg .trace.boxes")).to_have_count(1)  # the candlestick trace
    expect(chart.locator(".main-svg .trace.scatter .point").first).to_be_attached()
    # the alert window, shaded behind the plot, and the detection moment as a line above it
    shade = chart.locator(".layer-below .shapelayer path")
    expect(shade).to_have_count(1)
    assert "245, 158, 11" in shade.get_attribute("style")
    expect(chart.locator(".layer-above .shapelayer path")).to_have_count(1)
    expect(page.get_by_test_id("chart-caption")).to_contain_text("trades from 2024-03-01")


def test_an_analyst_groups_alerts_into_a_case_comments_and_closes_it(
    live_server: LiveServer, new_page: NewPage
) -> None:
    first, second, third = (
        make_alert(minute, venue="casework", symbol=f"CASE{minute}/USDT") for minute in (1, 2, 3)
    )
    store_alerts(live_server.db, [first, second, third])
    analyst = live_server.people["analyst"]
    page = logged_in(new_page, analyst, with_password=True)
    expect(page.get_by_test_id("nav-settings")).to_be_hidden()  # rules are the admins' business

    page.goto("/console/#/alerts?venue=casework")
    expect(page.get_by_test_id("alert-row")).to_have_count(3)
    for alert in (first, second):
        alert_row(page, alert).get_by_test_id("alert-select").check()
    expect(page.get_by_test_id("create-case")).to_have_text("Create case from 2 selected")
    page.get_by_test_id("create-case").click()
    dialog = page.get_by_test_id("case-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("case-title").fill("Coordinated pumps on casework")
    dialog.get_by_test_id("case-assignee").fill(analyst.name)
    dialog.get_by_test_id("case-create").click()

    expect(page).to_have_url(re.compile(r"#/cases/\d+$"))
    case_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("case-title")).to_have_text(f"Case #{case_id}: Coordinated pumps on casework")
    expect(page.get_by_test_id("case-assignee-now")).to_have_text(analyst.name)
    expect(page.get_by_test_id("case-alerts").get_by_test_id("alert-row")).to_have_count(2)

    page.goto("/console/#/alerts?venue=casework")  # a third alert joins the open case
    expect(alert_row(page, first).get_by_test_id("alert-select")).to_be_disabled()  # already in a case
    alert_row(page, third).get_by_test_id("alert-select").check()
    page.get_by_test_id("create-case").click()
    page.get_by_test_id("case-add-choice").select_option(case_id)
    page.get_by_test_id("case-add").click()
    expect(page).to_have_url(re.compile(rf"#/cases/{case_id}$"))
    expect(page.get_by_test_id("case-alerts").get_by_test_id("alert-row")).to_have_count(3)

    page.get_by_test_id("comment-body").fill("Same wallet cluster behind both.")
    page.get_by_test_id("comment-submit").click()
    expect(page.get_by_test_id("comment")).to_contain_text(["Same wallet cluster behind both."])

    page.get_by_test_id("case-close-disposition").select_option("true_positive")
    page.get_by_test_id("case-close-reason").fill("Confirmed with the venue.")
    page.get_by_test_id("case-close-submit").click()
    expect(page.get_by_test_id("case-status")).to_have_text("closed")
    expect(page.get_by_test_id("case-disposition")).to_have_text("true positive")
    expect(page.get_by_test_id("notice")).to_have_text("Case closed as true positive.")
    expect(page.get_by_test_id("case-close-form")).to_have_count(0)  # nothing left to do but comment

    page.get_by_test_id("nav-cases").click()
    expect(page.get_by_test_id("cases-closed").locator(f'[data-case-id="{case_id}"]')).to_be_visible()
    expect(page.get_by_test_id("cases-open").locator(f'[data-case-id="{case_id}"]')).to_have_count(0)

    page.goto(f"/console/#/alerts/{first.id}")
    expect(page.get_by_test_id("alert-disposition")).to_have_text("true positive")
    expect(page.get_by_test_id("alert-facts").get_by_test_id("status")).to_have_text("closed")


def test_an_analyst_acknowledges_and_closes_a_single_alert(
    live_server: LiveServer, new_page: NewPage
) -> None:
    alert = stored_alert(live_server.db, 3, "single", "ONE/USDT")
    analyst = live_server.people["analyst"]
    page = logged_in(new_page, analyst)
    page.goto(f"/console/#/alerts/{alert.id}")

    page.get_by_test_id("acknowledge").click()
    expect(page.get_by_test_id("notice")).to_have_text("Alert acknowledged.")
    expect(page.get_by_test_id("alert-facts").get_by_test_id("status")).to_have_text("acknowledged")
    expect(page.get_by_test_id("acknowledge")).to_have_count(0)

    page.get_by_test_id("close-submit").click()  # no disposition chosen: the browser keeps the form
    expect(page.get_by_test_id("close-form")).to_be_visible()
    page.get_by_test_id("close-disposition").select_option("benign")
    page.get_by_test_id("close-reason").fill("Listing announcement, not manipulation.")
    page.get_by_test_id("close-submit").click()
    expect(page.get_by_test_id("alert-disposition")).to_have_text("benign")
    expect(page.get_by_test_id("alert-history")).to_contain_text(f"{analyst.name} closed it as benign")
    expect(page.get_by_test_id("alert-history")).to_contain_text(f"{analyst.name} acknowledged it")


def test_a_viewer_sees_alerts_but_cannot_work_them_and_the_server_refuses_anyway(
    live_server: LiveServer, new_page: NewPage
) -> None:
    alert = stored_alert(live_server.db, 4, "viewing", "LOOK/USDT")
    viewer = live_server.people["viewer"]
    page = logged_in(new_page, viewer, with_password=True)

    filters = page.get_by_test_id("filters")
    filters.get_by_label("Venue").fill("viewing")
    filters.get_by_label("Status").select_option("new")
    filters.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"#/alerts\?venue=viewing&status=new$"))
    expect(page.get_by_test_id("alert-row")).to_have_count(1)
    expect(alert_row(page, alert)).to_be_visible()
    expect(page.get_by_test_id("alert-select")).to_have_count(0)
    expect(page.get_by_test_id("create-case")).to_have_count(0)
    expect(page.get_by_test_id("role-note")).to_be_visible()

    alert_row(page, alert).get_by_test_id("alert-link").click()
    acknowledge = page.get_by_test_id("acknowledge")
    expect(acknowledge).to_be_disabled()
    expect(page.get_by_test_id("close-submit")).to_be_disabled()
    expect(page.get_by_test_id("close-reason")).to_be_disabled()
    expect(page.get_by_test_id("alert-create-case")).to_be_disabled()

    # forced: enable the button by hand and press it; the server says no and the console shows why
    acknowledge.evaluate("button => button.removeAttribute('disabled')")
    acknowledge.click()
    expect(page.get_by_test_id("error-banner")).to_be_visible()
    expect(page.get_by_test_id("error-banner")).to_contain_text("needs the analyst role")

    status = page.evaluate(
        """async (id) => (await fetch(`/api/v1/alerts/${id}/close`, {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({disposition: "benign", reason: "forced"}),
        })).status""",
        alert.id,
    )
    assert status == 403
    page.reload()
    expect(page.get_by_test_id("alert-facts").get_by_test_id("status")).to_have_text("new")


def test_a_bad_log_in_is_refused_with_a_readable_message(live_server: LiveServer, new_page: NewPage) -> None:
    analyst = live_server.people["analyst"]
    page = new_page()
    log_in_with_password(page, analyst.name, analyst.password + "-wrong")
    error = page.get_by_test_id("login-error")
    expect(error).to_have_text(re.compile(r"^Log-in failed: .*not right"))
    expect(page.get_by_test_id("who")).to_be_hidden()

    log_in_with_key(page, "tw_ABCDEFGH_" + "x" * 43)
    expect(error).to_have_text(re.compile(r"^Log-in failed"))
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(page.get_by_test_id("live-indicator")).to_be_hidden()

    page.goto("/console/#/cases")  # a page behind the log-in sends you back to it
    expect(page).to_have_url(re.compile(r"#/login$"))


def test_an_alert_without_stored_market_data_says_so(live_server: LiveServer, new_page: NewPage) -> None:
    alert = stored_alert(live_server.db, 5, "nolake", "DARK/USDT")
    page = logged_in(new_page, live_server.people["viewer"])
    page.goto(f"/console/#/alerts/{alert.id}")
    chart = page.get_by_test_id("alert-chart")
    expect(chart.get_by_test_id("chart-empty")).to_contain_text("No market data stored for this window")
    expect(chart).to_have_attribute("data-state", "empty")
    expect(chart.locator(".js-plotly-plot")).to_have_count(0)


def test_the_risk_page_shows_a_symbols_alerts_and_worst_severity(
    live_server: LiveServer, new_page: NewPage
) -> None:
    mild, severe = (
        make_alert(6, venue="riskex", symbol="RISK/USDT", score=0.1),
        make_alert(7, venue="riskex", symbol="RISK/USDT", score=0.95),
    )
    store_alerts(live_server.db, [mild, severe])
    page = logged_in(new_page, live_server.people["viewer"])
    alert_row_link = f"/console/#/alerts/{severe.id}"
    page.goto(alert_row_link)
    page.get_by_test_id("alert-title").get_by_role("link", name="RISK/USDT").click()
    expect(page.get_by_test_id("risk-title")).to_have_text("RISK/USDT on riskex")
    expect(page.get_by_test_id("risk-highest")).to_have_text(severe.severity)
    expect(page.get_by_test_id("risk-alerts-count")).to_have_text("2 (2 not closed)")
    expect(page.get_by_test_id("risk-alerts").get_by_test_id("alert-row")).to_have_count(2)
    expect(page.get_by_test_id("risk-score")).to_have_text("1 of 100")  # 2024's alerts: outside the week
    expect(page.get_by_test_id("risk-reasons")).to_contain_text("Nothing against this symbol")


def test_the_risk_pages_show_a_fresh_score_with_its_reasons(
    live_server: LiveServer, new_page: NewPage
) -> None:
    fresh = make_alert(0, venue="riskex", symbol="FRESH/USDT", score=0.9).model_copy(
        update={"detected_at": datetime.now(UTC) - timedelta(minutes=5)}
    )
    store_alerts(live_server.db, [fresh])
    page = logged_in(new_page, live_server.people["viewer"])
    page.goto("/console/#/risk")
    ranked = page.get_by_test_id("risk-table")
    expect(ranked).to_contain_text("FRESH/USDT")
    ranked.get_by_role("link", name="FRESH/USDT").click()
    expect(page.get_by_test_id("risk-title")).to_have_text("FRESH/USDT on riskex")
    expect(page.get_by_test_id("risk-score")).not_to_have_text("1 of 100")
    expect(page.get_by_test_id("risk-reasons")).to_contain_text("1 pump-and-dump alert in the last 7 days")


def test_the_live_indicator_shows_a_dropped_feed_and_the_reconnect_catches_up(
    live_server: LiveServer, new_page: NewPage
) -> None:
    analyst = live_server.people["analyst"]
    witness = logged_in(new_page, analyst)
    witness.goto("/console/#/alerts?venue=gapex")
    expect(witness.get_by_test_id("feed-empty")).to_be_visible()

    page = new_page()
    page.clock.install()  # the retry timer only fires when the test says so
    sockets: list[tuple[Any, Any]] = []

    def through(socket: Any) -> None:  # pass each WebSocket through to the server, keeping both ends
        sockets.append((socket, socket.connect_to_server()))

    page.route_web_socket(re.compile(r".*/api/v1/ws/alerts$"), through)
    log_in_with_key(page, analyst.api_key)
    expect_logged_in(page, analyst)
    page.goto("/console/#/alerts?venue=gapex")
    expect(page.get_by_test_id("feed-empty")).to_be_visible()

    browser_end, server_end = sockets[0]
    server_end.close()
    browser_end.close(code=1001, reason="server going away")
    indicator = page.get_by_test_id("live-indicator")
    expect(indicator).to_have_attribute("data-state", "reconnecting")
    expect(indicator).to_contain_text("reconnecting in 1 s")

    missed = stored_alert(live_server.db, 8, "gapex", "GAP/USDT")
    expect(alert_row(witness, missed)).to_have_attribute(
        "data-live", "true"
    )  # pushed while this page was cut off

    page.clock.run_for(1500)  # the retry is due
    expect(indicator).to_have_attribute("data-state", "live")
    expect(alert_row(page, missed)).to_be_visible()  # fetched again after the reconnect
    expect(alert_row(page, missed)).not_to_have_attribute("data-live", "true")
    assert len(sockets) == 2


def test_an_admin_adds_switches_off_and_deletes_a_notification_rule(
    live_server: LiveServer, new_page: NewPage
) -> None:
    admin = live_server.people["admin"]
    page = logged_in(new_page, admin)
    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_test_id("rules-empty")).to_be_visible()

    form = page.get_by_test_id("rule-form")
    form.get_by_test_id("rule-name-input").fill("desk")
    form.get_by_test_id("rule-symbols").fill("PUMP/BTC, LIVE/BTC")
    form.get_by_test_id("rule-destinations").fill("nonsense")
    form.get_by_test_id("rule-save").click()
    expect(page.get_by_test_id("error-banner")).to_contain_text("destination")  # the server's own words

    form.get_by_test_id("rule-destinations").fill("env:TAPEWATCH_E2E_HOOK")
    form.get_by_test_id("rule-save").click()
    expect(page.get_by_test_id("notice")).to_have_text("Rule desk added.")
    row = page.get_by_test_id("rule-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("rule-destinations-shown")).to_have_text("env:TAPEWATCH_E2E_HOOK")
    expect(row).to_contain_text("symbol PUMP/BTC, LIVE/BTC")

    row.get_by_test_id("rule-enabled").uncheck()
    expect(page.get_by_test_id("notice")).to_have_text("Rule desk disabled.")
    page.reload()
    expect(page.get_by_test_id("rule-row").get_by_test_id("rule-enabled")).not_to_be_checked()

    delete = page.get_by_test_id("rule-row").get_by_test_id("rule-delete")
    delete.click()
    expect(delete).to_have_text("Really delete desk?")
    delete.click()
    expect(page.get_by_test_id("notice")).to_have_text("Rule desk deleted.")
    expect(page.get_by_test_id("rules-empty")).to_be_visible()


def test_logging_out_in_one_tab_ends_the_session_in_the_others(
    live_server: LiveServer, new_page: NewPage
) -> None:
    analyst = live_server.people["analyst"]
    page = logged_in(new_page, analyst)
    other = page.context.new_page()  # same browser profile, same cookie
    other.goto("/console/#/cases")
    expect_logged_in(other, analyst)

    other.get_by_test_id("logout").click()
    expect(other.get_by_test_id("login-key-form")).to_be_visible()
    expect(other.get_by_test_id("live-indicator")).to_be_hidden()

    page.get_by_test_id("nav-cases").click()  # the next request finds the session gone
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(page.get_by_test_id("error-banner")).to_have_text(re.compile("Your session has ended"))


def test_text_from_the_market_is_shown_as_text_never_as_markup(
    live_server: LiveServer, new_page: NewPage
) -> None:
    symbol = '<img src=x data-injected onerror="window.injected=1">'
    alert = stored_alert(live_server.db, 9, "hostile", symbol)
    page = logged_in(new_page, live_server.people["viewer"])
    page.goto("/console/#/alerts?venue=hostile")
    expect(alert_row(page, alert)).to_contain_text(symbol)
    page.goto(f"/console/#/alerts/{alert.id}")
    expect(page.get_by_test_id("alert-title")).to_contain_text(symbol)
    expect(page.locator("[data-injected]")).to_have_count(0)
    assert page.evaluate("window.injected") is None
