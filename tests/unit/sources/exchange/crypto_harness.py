"""Helpers shared by the exchange tests: settings aimed at the fake server, trade rows, async waiting.

Not a conftest.py on purpose: a second conftest module would shadow `tests/conftest.py`,
which other test files import by name.
"""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

import polars as pl

from tapewatch.config import ExchangeSettings
from tapewatch.io.aggregates import last_number
from tapewatch.sources.exchange.live import ExchangeLiveSource, SourceBatch
from unit.sources.exchange.fake_binance import FakeBinance

T = TypeVar("T")

T0 = 1_704_067_200_000
"""2024-01-01T00:00:00Z in epoch ms: every test's market opens here."""
START = datetime(2024, 1, 1, tzinfo=UTC)


def settings_for(server: FakeBinance, **overrides: Any) -> ExchangeSettings:
    """Settings that reach only the fake server, with short back-offs so tests stay fast."""
    values: dict[str, Any] = {
        "rest_url": server.rest_url,
        "ws_url": server.ws_url,
        "rate_limit_ms": 1,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.4,
        "live_batch_ms": 10,
        "history_settle_s": 0.0,  # the fakes' history is complete at once
    }
    return ExchangeSettings(**{**values, **overrides})


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run a coroutine on a fresh loop, failing (not hanging) after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def steady(
    start_ms: int, count: int, step_ms: int, price: float = 100.0
) -> list[tuple[int, float, float, bool]]:
    """`count` trades `step_ms` apart, alternating taker sides, the price creeping up."""
    return [(start_ms + i * step_ms, price + i * 0.01, 1.0 + i % 3, i % 2 == 0) for i in range(count)]


async def until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait, without blocking the loop, until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a blocking server control from async code without stalling the client's loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


class Collector:
    """Runs a live source in the background and keeps every batch it yields."""

    def __init__(self, source: ExchangeLiveSource) -> None:
        self.source = source
        self.batches: list[SourceBatch] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.task = asyncio.ensure_future(self._collect())
        return self

    async def _collect(self) -> None:
        async for batch in self.source.batches():
            self.batches.append(batch)

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # surface a failure of the source itself
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass

    def trades(self) -> pl.DataFrame:
        """Every trade yielded so far, in yield order."""
        frames = [batch.trades for batch in self.batches]
        return pl.concat(frames) if frames else pl.DataFrame()

    def ids(self, symbol: str) -> list[int]:
        """Trade ids of one symbol in the order they were yielded (an aggregate's: its last, "2-4" → 4)."""
        trades = self.trades()
        if trades.is_empty():
            return []
        return [last_number(i) or 0 for i in trades.filter(pl.col("symbol") == symbol)["trade_id"]]

    def rejected(self) -> list[dict]:
        """Every rejected message so far."""
        return [row for batch in self.batches for row in batch.rejected]


class CtrlC:
    """A thread that waits for the live subscription, acts, waits for `done()`, then presses Ctrl-C.

    Ctrl-C is only pressed while the command still runs: pressed later, it would stop pytest.
    """

    def __init__(self, server: FakeBinance, act: Callable[[], object], done: Callable[[], bool]) -> None:
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._script, args=(server, act, done))

    def _script(self, server: FakeBinance, act: Callable[[], object], done: Callable[[], bool]) -> None:
        try:
            server.wait_until(lambda: bool(server.subscribed()) or self.finished.is_set(), timeout=30)
            act()
            server.wait_until(lambda: done() or self.finished.is_set(), timeout=15)
        finally:
            if not self.finished.is_set():
                _thread.interrupt_main()

    def run(self, command: Callable[[], T]) -> T:
        """Run the command (in this, the main thread) while the script acts; returns its result."""
        self.thread.start()
        try:
            return command()
        finally:
            self.finished.set()
            self.thread.join()
