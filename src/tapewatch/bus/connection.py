"""Connecting to NATS and retrying through outages: the fault handling every bus part shares.

nats-py reconnects by itself (forever, here) and buffers what is published while
it does; what it cannot hide is a request that times out or fails during the
outage. `retrying` wraps those — publishes, acks, API calls — with exponential
back-off, logging each failure once per attempt, so a dropped connection costs
time, never an alert. Publishes carry a `Nats-Msg-Id`, so a retry of one that in
fact reached the server is dropped as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from tapewatch.config import BusSettings
from tapewatch.errors import TapewatchError

log = logging.getLogger("tapewatch.bus")
CONNECT_ATTEMPTS = 2
"""Tries past the first at start-up before a one-line error."""
CANCEL_RETRY_S = 0.5
RECONNECT_WAIT_S = 1.0
"""Between reconnection attempts after a connection was lost (nats-py waits a fixed time)."""
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,
    nats.errors.Error,  # connection closed/reconnecting, timeouts, no responders, JetStream API errors
    ConnectionError,
    OSError,
)


class BusError(TapewatchError):
    """The bus cannot be used as configured (unreachable at start, wrong partition count, …)."""


async def connect(url: str, bus: BusSettings, *, name: str) -> tuple[Client, JetStreamContext]:
    """Connect with endless reconnects (logged); a server unreachable at start is a one-line BusError."""

    async def disconnected() -> None:
        if not client.is_closed:  # a deliberate close is not news
            log.warning("bus %s: connection lost; reconnecting", url)

    async def reconnected() -> None:
        log.warning("bus %s: reconnected", url)

    failures: list[Exception] = []

    async def error(exc: Exception) -> None:
        if client.is_connected or client.is_reconnecting:
            log.warning("bus %s: %s", url, exc or type(exc).__name__)
        else:
            failures.append(exc)  # at start, the one-line error says it

    client = nats.NATS()
    try:
        await client.connect(
            url,
            name=name,
            connect_timeout=max(1, int(bus.request_timeout_s)),
            allow_reconnect=True,
            max_reconnect_attempts=CONNECT_ATTEMPTS,
            reconnect_time_wait=RECONNECT_WAIT_S,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            pending_size=64 * 1024 * 1024,  # what is buffered while reconnecting
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        cause = failures[-1] if failures else exc  # "no servers available" hides why
        reason = str(cause) or type(cause).__name__
        raise BusError(f"bus {url}: cannot connect ({reason}); is nats-server -js running there?") from None
    # Give up at start (a wrong URL is the user's to fix), never once connected (an outage passes).
    client.options["max_reconnect_attempts"] = -1
    return client, client.jetstream(timeout=bus.request_timeout_s)


async def retrying(
    what: str,
    call: Callable[[], Awaitable[T]],
    bus: BusSettings,
    *,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """Await `call()` until it succeeds, backing off exponentially on transient failures."""
    delay = bus.retry_initial_s
    while True:
        try:
            return await call()
        except retry_on as exc:
            log.warning("%s failed (%s); retrying in %.1fs", what, str(exc) or type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(bus.retry_max_s, delay * 2)


async def until_signalled(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run a long-lived bus part (`run(stop)`) until SIGINT or SIGTERM sets its stop event."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return await run(stop)


def log_to_stderr() -> None:
    """Bus warnings (connection lost, retries) as plain lines on stderr, unless logging is set up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def cancel(task: asyncio.Task) -> None:
    """Cancel a task and wait until it has ended, cancelling again if a cancellation was lost.

    nats-py waits with `asyncio.wait_for`, which on Python 3.11 can swallow a
    cancellation that lands just as a message arrives; the task would run on.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_RETRY_S)
