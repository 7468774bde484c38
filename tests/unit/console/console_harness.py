"""What the console tests do over and over: make market data and alerts, store them, log in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import polars as pl
from conftest import START, burst, market, quiet_trades
from playwright.sync_api import Page, expect

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.io.lake import Lake
from tapewatch.records import BAR_SCHEMA, Alert, empty_frame
from tapewatch.store.alert_store import open_store
from unit.console.conftest import Person
from unit.store.test_store import make_alert

PUMP_AT = START + timedelta(hours=4)


def pumped_trades(symbol: str, venue: str = "testex") -> pl.DataFrame:
    """Four quiet hours of an illiquid coin, then a crowd of buyers lifting its price."""
    return market(quiet_trades(symbol, venue=venue, hours=5), burst(PUMP_AT, symbol=symbol, venue=venue))


def detect(trades: pl.DataFrame) -> list[Alert]:
    """The real pump detector on the trades, as `tapewatch detect` runs it."""
    return run_batch(build_detectors(Settings(), ["pump_onset"]), trades, empty_frame(BAR_SCHEMA))


def store_alerts(db: Any, alerts: list[Alert]) -> None:
    """Save alerts through a store of its own, as a detector process would (the server is not told)."""
    with open_store(db) as store:
        store.save(alerts)


def stored_alert(db: Any, minute: int, venue: str, symbol: str, **fields: Any) -> Alert:
    """A made-up alert (no market data behind it), stored: for tests about the workflow, not detection."""
    alert = make_alert(minute, venue=venue, symbol=symbol, **fields)
    store_alerts(db, [alert])
    return alert


def pump_alert(lake: Lake | None, db: Any, symbol: str) -> Alert:
    """Detect a pump on `symbol`, keep its trades in the lake (unless `lake` is None), store the alert."""
    trades = pumped_trades(symbol)
    alerts = detect(trades)
    assert len(alerts) == 1, f"the generated pump should give exactly one alert, got {len(alerts)}"
    if lake is not None:
        lake.write("trades", trades)
    store_alerts(db, alerts)
    return alerts[0]


def log_in_with_key(page: Page, api_key: str) -> None:
    page.goto("/console/")
    page.get_by_test_id("login-api-key").fill(api_key)
    page.get_by_test_id("login-key-submit").click()


def log_in_with_password(page: Page, name: str, password: str) -> None:
    page.goto("/console/")
    page.get_by_test_id("login-name").fill(name)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-password-submit").click()


def expect_logged_in(page: Page, person: Person) -> None:
    expect(page.get_by_test_id("who")).to_have_text(f"{person.name} ({person.role})")
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")


def logged_in(new_page: Callable[[], Page], person: Person, *, with_password: bool = False) -> Page:
    """A fresh page with `person` logged in (by API key, or by name and password) and the feed live."""
    page = new_page()
    if with_password:
        log_in_with_password(page, person.name, person.password)
    else:
        log_in_with_key(page, person.api_key)
    expect_logged_in(page, person)
    return page


def alert_row(page: Page, alert: Alert) -> Any:
    return page.locator(f'[data-testid="alert-row"][data-alert-id="{alert.id}"]')
