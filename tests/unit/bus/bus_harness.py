"""Shared pieces of the bus tests: a private corner of the real NATS server, the reference alerts, polling.

Every test gets its own streams, subject prefix, lease bucket and consumer names
(`private_settings`), so tests never see each other's messages, and `on_bus`
deletes them at the end. NATS not reachable is a failure with a clear message,
not a skip: these tests are the only proof that the bus works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import polars as pl
import pytest
from nats.js import JetStreamContext

from tapewatch.bus.sink import AlertSink
from tapewatch.bus.status import BusStatus, read_status
from tapewatch.bus.subjects import BusNames, isolated
from tapewatch.bus.topology import delete_topology, ensure_topology
from tapewatch.bus.worker import BusWorker
from tapewatch.config import BusSettings, Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.records import BAR_SCHEMA, Alert, empty_frame
from tapewatch.store.alert_store import AlertStore, open_store

NATS_URL = "nats://127.0.0.1:4222"
SETTLE_TIMEOUT_S = 60.0


def private_settings(**bus: Any) -> Settings:
    """Settings on names no other test uses; short leases so takeovers happen within a test."""
    defaults: dict[str, Any] = {
        "url": NATS_URL,
        "partitions": 4,
        "lease_ttl_s": 4.0,
        "heartbeat_s": 0.3,
        "message_trades": 150,
        "fetch_batch": 16,
        "retry_initial_s": 0.1,
        "retry_max_s": 1.0,
    }
    return Settings(bus=isolated(BusSettings(**(defaults | bus)), f"test{uuid.uuid4().hex[:10]}"))


async def connect_or_fail() -> nats.NATS:
    try:
        return await nats.connect(
            NATS_URL, connect_timeout=3, max_reconnect_attempts=1, allow_reconnect=False
        )
    except Exception as exc:  # noqa: BLE001 — any failure here means the same thing
        pytest.fail(
            f"NATS with JetStream is not reachable at {NATS_URL} ({exc or type(exc).__name__}); the bus "
            "tests need it: run `.ci/run`, or `nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats-server`"
        )


@contextlib.asynccontextmanager
async def on_bus(settings: Settings) -> AsyncIterator[JetStreamContext]:
    """A JetStream context with this test's streams and bucket in place; all deleted afterwards."""
    client = await connect_or_fail()
    js = client.jetstream()
    names = BusNames.from_settings(settings.bus)
    await ensure_topology(js, names, settings.bus)
    try:
        yield js
    finally:
        await delete_topology(js, names)
        await client.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds (a loaded CI is slow)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def settled(js: JetStreamContext, settings: Settings) -> BusStatus:
    """Wait until every trade is processed and every alert stored; return that status."""
    names = BusNames.from_settings(settings.bus)
    status: BusStatus | None = None

    async def done() -> bool:
        nonlocal status
        status = await read_status(js, names)
        return status.settled

    await until(done, "every trade processed and every alert stored")
    assert status is not None
    return status


class Running:
    """Workers and a sink running as tasks of the test's event loop, stopped together."""

    def __init__(self, settings: Settings, store: AlertStore) -> None:
        self.settings = settings
        self.stop = asyncio.Event()
        self.sink = AlertSink(settings, NATS_URL, store)
        self.workers: list[BusWorker] = []
        self.tasks = [asyncio.create_task(self.sink.run(self.stop))]

    def add_worker(self, url: str = NATS_URL, **kwargs: Any) -> BusWorker:
        worker = BusWorker(self.settings, url, **kwargs)
        self.workers.append(worker)
        self.tasks.append(asyncio.create_task(worker.run(self.stop)))
        return worker

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 30)


def reference_alerts(trades: pl.DataFrame, settings: Settings) -> dict[str, dict]:
    """What `tapewatch detect` gives on the same trades, by id."""
    batch = run_batch(build_detectors(settings), trades, empty_frame(BAR_SCHEMA))
    return {alert.id: comparable(alert) for alert in batch}


def stored_alerts(db: Path) -> dict[str, dict]:
    with open_store(db) as store:
        return {alert.id: comparable(alert) for alert in store.list(limit=None)}


def comparable(alert: Alert) -> dict:
    """An alert as its JSON line says it, without the live-only timing."""
    fields = json.loads(alert.to_json_line())
    fields.pop("timing", None)
    return fields


class Proxy:
    """A TCP relay to the NATS server that a test can cut, dropping a client's connection for real."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    def cut(self) -> None:
        """Close every open connection (the client sees the server go away)."""
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", 4222)
        self.writers |= {client_writer, server_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


@contextlib.contextmanager
def topology_for(settings: Settings) -> Iterator[None]:
    """`on_bus` for synchronous code (a CLI run): the streams and bucket exist inside, not after."""
    names = BusNames.from_settings(settings.bus)

    async def run(action: Callable[[JetStreamContext], Awaitable[Any]]) -> None:
        client = await connect_or_fail()
        try:
            await action(client.jetstream())
        finally:
            await client.close()

    asyncio.run(run(lambda js: ensure_topology(js, names, settings.bus)))
    try:
        yield
    finally:
        asyncio.run(run(lambda js: delete_topology(js, names)))
