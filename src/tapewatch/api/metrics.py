"""Prometheus metrics of one app: requests and latency by route, live-feed clients and pushes.

Each app has its own registry (tests build many apps in one process). Requests
are labelled by route template (`/api/v1/alerts/{alert_id}`), never by the raw
path, so ids cannot blow up the label count; unmatched paths share one label.

/metrics is served without authentication: it holds counts and timings only
(no alert, user or key data), and Prometheus scrapers usually carry no
credentials. Keep the port off the public internet, as for the API itself.
"""

from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"
PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


class ApiMetrics:
    """The collectors; the middleware and the live feed update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tapewatch_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tapewatch_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ws_clients = Gauge(
            "tapewatch_ws_clients",
            "WebSocket clients subscribed to the live alert feed",
            registry=self.registry,
        )
        self.alerts_pushed = Counter(
            "tapewatch_feed_alerts", "New alerts found by the live feed and pushed", registry=self.registry
        )
        self.messages_sent = Counter(
            "tapewatch_ws_messages_sent",
            "Alert messages written to WebSocket clients",
            registry=self.registry,
        )
        self.clients_dropped = Counter(
            "tapewatch_ws_clients_dropped",
            "WebSocket clients disconnected for falling too far behind",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every collector."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (pure ASGI: streams untouched)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The full path template of the route that answered (`/api/v1/alerts/{alert_id}`).

    A route knows its path relative to the router it was defined on; a router
    included under a prefix adds that in front. The prefix is what the request
    path has before the route's own part (the template filled with the request's
    path parameters); when that cannot be worked out the route's own path is used.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return UNMATCHED
    params = scope.get("path_params", {})
    try:
        own = PARAMETER.sub(lambda match: str(params[match.group(1)]), template)
    except KeyError:
        return template
    path = scope.get("path", "")
    return path[: len(path) - len(own)] + template if path.endswith(own) else template
