"""A real Tapewatch server (uvicorn, SQLite, a Parquet lake) and a real browser (Debian's Chromium via Playwright).

The server runs in a thread on 127.0.0.1 on a port the OS picks, for the whole session; each test
gets a fresh browser context (no shared cookies) and adds the alerts it needs under its own symbols,
so tests do not depend on one another's order. Alerts are written by a separate store, as a
detector process would: the server only learns of them through the database, like in production.

Chromium and Playwright are required, not optional: without them these tests fail and say how to
install them (`.ci/run` does). Playwright's own browser download is not used (it needs network).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tapewatch.config import ApiSettings, Settings
from tapewatch.io.lake import Lake
from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM
from tapewatch.store.alert_store import open_engine

CHROMIUM = Path(os.environ.get("TAPEWATCH_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these the browser phones home, and on a closed network it then refuses connections
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000
"""Longest wait for something to appear: a bound for slow shared CI machines, not a performance claim."""
STARTUP_S = 60.0


@dataclass
class Person:
    """A user of the console with their credentials (never printed: pytest shows reprs on failure)."""

    name: str
    role: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)


@dataclass
class LiveServer:
    """The running server: its address, database file, lake, and the people who can log in."""

    url: str
    db: Path
    lake: Lake
    people: dict[str, Person]


def _install_hint(what: str) -> str:
    return (
        f"{what}. The browser tests need Debian's Chromium and Playwright for Python: "
        "`apt-get install -y chromium` (gives /usr/bin/chromium, or set TAPEWATCH_E2E_CHROMIUM) and "
        "`.venv/bin/pip install playwright` (do not run `playwright install`). .ci/run installs Chromium, "
        "the `test` extra Playwright."
    )


PLAYWRIGHT = importlib.util.find_spec("playwright") is not None


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Without Playwright a browser test module cannot even be imported: collect one failing test instead.

    A plain import error would stop the whole session at collection, or, skipped, pass unnoticed.
    """
    if PLAYWRIGHT or "playwright" not in module_path.read_text(encoding="utf-8"):
        return None
    return _NoPlaywright.from_parent(parent, path=module_path)


class _NoPlaywright(pytest.Module):
    def collect(self) -> Iterator[pytest.Item]:
        item = _FailsForPlaywright.from_parent(self, name="browser_tests")
        item.add_marker(pytest.mark.chromium)  # selected and deselected with the tests it stands for
        yield item


class _FailsForPlaywright(pytest.Item):
    def runtest(self) -> None:
        pytest.fail(_install_hint("Playwright for Python is not installed"), pytrace=False)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API and console on a free local port, with an admin, an analyst and a viewer."""
    import uvicorn

    from tapewatch.api import create_app

    root = tmp_path_factory.mktemp("console")
    db = root / "tapewatch.db"
    engine = open_engine(db)
    people = {}
    for name, role in (("ada", "admin"), ("ana", "analyst"), ("vic", "viewer")):
        password = secrets.token_urlsafe(12)
        auth.create_user(engine, SYSTEM, name, role, password=password)
        _, key = auth.create_api_key(engine, SYSTEM, name, "e2e")
        people[role] = Person(name, role, password, key)
    engine.dispose()

    lake = Lake(root / "lake")
    settings = Settings(api=ApiSettings(session_secret=secrets.token_urlsafe(32), feed_poll_s=0.1))
    app = create_app(settings, db=str(db), lake=str(lake.root))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="e2e-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the Tapewatch server did not start; its log is above", pytrace=False)
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", db, lake, people)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, headless; fails (never skips) when it or Playwright is missing.

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and every later test that calls `asyncio.run` would
    fail. (With pytest-xdist, use `--dist loadfile` so a module's tests stay together.)
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(_install_hint(f"Chromium is not installed at {CHROMIUM}"), pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """Opens pages in fresh browser contexts (each its own cookies); fails the test on a JavaScript error.

    Call it once per user in the test: `page = new_page()`.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    contexts = []
    problems: list[str] = []

    def open_page() -> Any:
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text or message.type == "assert"
                else None
            ),
        )
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not problems, "the console reported errors:\n" + "\n".join(problems)
