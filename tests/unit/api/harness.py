"""Helpers of the API tests: a real app on a real database with one key per role, and a real server."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from tapewatch.api import create_app
from tapewatch.config import ApiSettings, Settings
from tapewatch.records import Alert
from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM
from tapewatch.store.alert_store import AlertStore, open_store
from unit.store.test_store import postgres_schema

ROLES = ("viewer", "analyst", "admin")
PASSWORD = secrets.token_urlsafe(12)
"""Every test user's console password: made up per run, never written down."""


def api_settings(**api: Any) -> Settings:
    """Settings for a test server: a fresh session secret, a fast live feed."""
    return Settings(
        api=ApiSettings(**{"session_secret": secrets.token_urlsafe(32), "feed_poll_s": 0.05, **api})
    )


@dataclass
class Api:
    """A running app (TestClient), its store, and a key per role (users vic, ana and ada)."""

    client: TestClient
    store: AlertStore
    url: str
    lake: Path
    keys: dict[str, str]
    settings: Settings

    def another_app(self) -> Any:
        """A second app on the same database (as another server process would be), not yet started."""
        return create_app(self.settings, db=self.url, lake=str(self.lake))

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(role), **kwargs)

    def post(self, path: str, body: Any = None, role: str | None = "analyst", **kwargs: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers(role), **kwargs)

    def save(self, *alerts: Alert) -> list[Alert]:
        self.store.save(alerts)
        return list(alerts)


def add_users(store: AlertStore) -> dict[str, str]:
    """Users vic (viewer), ana (analyst), ada (admin), each with a password and an API key."""
    keys = {}
    for name, role in (("vic", "viewer"), ("ana", "analyst"), ("ada", "admin")):
        auth.create_user(store.engine, SYSTEM, name, role, PASSWORD)
        keys[role] = auth.create_api_key(store.engine, SYSTEM, name, "tests")[1]
    return keys


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of that kind (PostgreSQL: a schema dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'api.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextlib.contextmanager
def running_api(url: str, tmp_path: Path, settings: Settings | None = None) -> Iterator[Api]:
    lake = tmp_path / "lake"
    with open_store(url) as store:
        keys = add_users(store)
        settings = settings or api_settings()
        with TestClient(create_app(settings, db=url, lake=str(lake))) as client:
            yield Api(client, store, url, lake, keys, settings)


@dataclass
class LiveServer:
    """The app served by uvicorn on a real socket, in a thread of the test process."""

    base: str
    ws: str
    server: uvicorn.Server


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[LiveServer]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(10)
