"""One pacer per venue for every REST request ccxt sends: weight budgets, 429 back-off, 418 bans.

ccxt's own throttle spaces requests by a fixed cost table that is partly out of date
(Binance has charged aggTrades weight 4 since 2025-03-10; ccxt 4.5 still counts 2) and
knows nothing of the weight other clients on the same IP have used, of `Retry-After`,
or of bans. Binance counts weight per IP and minute, answers 429 past the limit, and
bans the IP (418, from 2 minutes up to 3 days) when a client keeps sending after 429s.

`install_limiter` wraps one exchange object's `fetch2` (every implicit REST call goes
through it, whoever calls: markets, backfill pages, gap refills, ccxt.pro's book
snapshots) and `on_rest_response` (every response, with its own headers). All exchange
objects of one venue and base URL in the process share one `VenueLimiter`, so a 429
pauses every symbol and task of that venue, not just the request that got it:

- before sending, the request's weight is reserved in the current window; past
  `HEADROOM` of the venue's limit it waits for the next window. The venue's used-weight
  header (weight spent by anyone on this IP) raises the count when it is higher;
- a 429 pauses the venue for its `Retry-After` (or the rest of the window); the
  request is retried after the pause, up to `RETRIES_429` times;
- a 418 stops the venue's REST calls until the ban's end: each call raises `VenueBanned`
  (one line, naming the end) without reaching the venue; the ban is logged once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ccxt
import ccxt.async_support

log = logging.getLogger(__name__)

HEADROOM = 0.9
"""Share of a venue's weight limit the pacer lets requests use: the rest absorbs other clients' weight."""
RETRIES_429 = 3
"""Times one request is sent again after 429s (each after the venue's pause)."""
DEFAULT_BAN_S = 120.0
"""A 418 without Retry-After: Binance's shortest ban."""


@dataclass(frozen=True)
class Budget:
    """A venue's published REST limit: `limit` weight per `window_s`, and how its responses report use."""

    limit: int
    window_s: float
    used_header: str | None = None  # lower-case response header with the weight used in this window
    cost_per_weight: float = 1.0  # ccxt cost units per weight unit, to correct ccxt's throttle
    weights: dict[str, Callable[[dict[str, Any]], int]] = field(default_factory=dict)  # path → weight
    api: str = "public"  # the ccxt API section `weights` is about (spot; futures have their own limits)


def _by_limit(tiers: list[tuple[int, int]], default_limit: int) -> Callable[[dict[str, Any]], int]:
    def weight(params: dict[str, Any]) -> int:
        limit = int(params.get("limit", default_limit))
        return next((w for most, w in tiers if limit <= most), tiers[-1][1])

    return weight


def _fixed(weight: int) -> Callable[[dict[str, Any]], int]:
    return lambda params: weight


BUDGETS: dict[str, Budget] = {
    # https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits (REQUEST_WEIGHT 6000/min)
    "binance": Budget(
        limit=6000,
        window_s=60.0,
        used_header="x-mbx-used-weight-1m",
        cost_per_weight=0.2,  # ccxt: rateLimit 50 ms, cost 0.2 per weight → 6000 a minute
        weights={
            "ping": _fixed(1),
            "time": _fixed(1),
            "exchangeInfo": _fixed(20),
            "aggTrades": _fixed(4),  # 2 until 2025-03-10; ccxt 4.5 still charges 2
            "klines": _fixed(2),
            "depth": _by_limit([(100, 5), (500, 25), (1000, 50), (5000, 250)], 100),
        },
    ),
}
"""Weight budgets of the venues that publish one; other venues get 429/418 handling and ccxt's throttle."""


class VenueBanned(ccxt.DDoSProtection):  # type: ignore[misc]
    """The venue banned this IP (HTTP 418): no REST request is sent until `until`."""

    def __init__(self, venue: str, until: float) -> None:
        self.until = until
        end = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        super().__init__(
            f"{venue}: REST banned by the exchange (HTTP 418) until {end}; no requests until then"
        )


_status: contextvars.ContextVar[int | None] = contextvars.ContextVar("tapewatch_rest_status", default=None)
"""The HTTP status of the response the current task received last (set by the response hook)."""


class VenueLimiter:
    """The weight one venue has used in its current window, and whether it is paused or banned."""

    def __init__(self, venue: str, budget: Budget | None) -> None:
        self.venue = venue
        self.budget = budget
        self.used = 0.0  # weight used in window `self.window` (the venue's header, or ours if higher)
        self.window = 0
        self.paused_until = 0.0  # after a 429
        self.banned_until = 0.0  # after a 418
        self.stats: Counter[str] = Counter()  # requests, weight, waits, rate_limited, banned

    def weight(self, api: Any, path: str, params: Any) -> int | None:
        """The weight the venue charges for one request; None where Tapewatch has no figure."""
        if self.budget is None or _section(api) != self.budget.api or path not in self.budget.weights:
            return None
        return self.budget.weights[path](params if isinstance(params, dict) else {})

    async def acquire(self, weight: int) -> None:
        """Reserve `weight` in the current window, waiting out pauses and full windows."""
        while True:
            now = time.time()
            if now < self.banned_until:
                raise VenueBanned(self.venue, self.banned_until)
            if now < self.paused_until:
                self.stats["waits"] += 1
                await asyncio.sleep(self.paused_until - now)
                continue
            if self.budget is None:
                break
            self._roll(now)
            if self.used == 0 or self.used + weight <= self.budget.limit * HEADROOM:
                self.used += weight
                break
            self.stats["waits"] += 1
            await asyncio.sleep((self.window + 1) * self.budget.window_s - now + 0.001)
        self.stats["requests"] += 1
        self.stats["weight"] += weight

    def observe(self, status: int, headers: dict[str, Any]) -> None:
        """Read one response: the weight the venue reports, a 429's pause, a 418's ban."""
        now = time.time()
        lower = {str(k).lower(): v for k, v in headers.items()}
        if self.budget is not None:
            self._roll(now)
            reported = _number(lower.get(self.budget.used_header or ""))
            if reported is not None:
                self.used = max(self.used, reported)
        retry = _number(lower.get("retry-after"))
        if status == 429:
            self.stats["rate_limited"] += 1
            rest = self.budget.window_s - now % self.budget.window_s if self.budget else 1.0
            until = now + (retry if retry is not None else rest)
            if until > self.paused_until:
                if self.paused_until <= now:
                    log.warning(
                        "%s: rate limit reached (HTTP 429); all REST requests paused for %.1fs",
                        self.venue,
                        until - now,
                    )
                self.paused_until = until
        elif status == 418:
            self.stats["banned"] += 1
            until = now + (retry if retry is not None else DEFAULT_BAN_S)
            if until > self.banned_until:
                self.banned_until = until
                log.error("%s", VenueBanned(self.venue, until))

    def _roll(self, now: float) -> None:
        assert self.budget is not None
        window = math.floor(now / self.budget.window_s)
        if window != self.window:
            self.window = window
            self.used = 0.0


_LIMITERS: dict[tuple[str, str, int, float], VenueLimiter] = {}


def limiter_for(venue: str, base_url: str = "", *, limit: int = 0, window_s: float = 0.0) -> VenueLimiter:
    """The process's limiter of a venue (one per venue and base URL); `limit`/`window_s` override the budget."""
    key = (venue, base_url, limit, window_s)
    if key not in _LIMITERS:
        budget = BUDGETS.get(venue)
        if budget is None and limit:
            budget = Budget(limit=limit, window_s=window_s or 60.0)
        elif budget is not None and (limit or window_s):
            budget = Budget(
                limit=limit or budget.limit,
                window_s=window_s or budget.window_s,
                used_header=budget.used_header,
                cost_per_weight=budget.cost_per_weight,
                weights=budget.weights,
            )
        _LIMITERS[key] = VenueLimiter(venue, budget)
    return _LIMITERS[key]


def install_limiter(exchange: ccxt.async_support.Exchange, limiter: VenueLimiter) -> None:
    """Send every REST request of `exchange` through `limiter` (attributes of this instance only)."""
    fetch2 = exchange.fetch2
    on_response = exchange.on_rest_response
    exchange.tapewatch_limiter = limiter
    budget = limiter.budget

    def on_rest_response(
        code: int, reason: str, url: str, method: str, headers: Any, body: Any, *rest: Any
    ) -> Any:
        _status.set(int(code))
        limiter.observe(int(code), dict(headers or {}))
        return on_response(code, reason, url, method, headers, body, *rest)

    async def paced_fetch2(
        path: str, api: Any = "public", method: str = "GET", params: Any = None, config: Any = None
    ) -> Any:
        params = {} if params is None else params
        config = {} if config is None else config
        weight = limiter.weight(api, path, params)
        if budget is not None and weight is not None:  # ccxt's throttle charges what the venue does
            config = {k: v for k, v in config.items() if k != "byLimit"} | {
                "cost": weight * budget.cost_per_weight
            }
        weight = 1 if weight is None else weight
        attempt = 0
        while True:
            await limiter.acquire(weight)
            _status.set(None)
            try:
                return await fetch2(path, api, method, params, config)
            except ccxt.BaseError:
                status = _status.get()
                if status == 418:
                    raise VenueBanned(limiter.venue, limiter.banned_until) from None
                attempt += 1
                if status != 429 or attempt > RETRIES_429:
                    raise

    exchange.fetch2 = paced_fetch2
    exchange.on_rest_response = on_rest_response


def _section(api: Any) -> str:
    """ccxt passes an endpoint's API section as a name or a one-element list of it."""
    return str(api[0]) if isinstance(api, list | tuple) and api else str(api)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
