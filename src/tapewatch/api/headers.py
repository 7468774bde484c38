"""Security headers on every HTTP response (API JSON, errors, docs, console), and a Secure session cookie
whenever the request came over HTTPS.

A response that sets one of these headers itself (the console's page sends its
own, stricter Content-Security-Policy) keeps its own. API responses carry the
caller's data, so they are never stored by a browser or proxy (`no-store`), unless
the route says otherwise (Swagger UI's static files).
Whether a request is HTTPS is the ASGI scope's scheme, which the proxy-headers
middleware sets from X-Forwarded-Proto only when the connection comes from a
trusted proxy (`api.trusted_proxies`).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
HSTS = "max-age=31536000"
"""Sent over HTTPS only: a browser that has seen it will not talk to this host over plain HTTP."""
API_PATHS = "/api/"
"""Under here responses carry data behind authentication: never cached."""


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, and `Secure` to the session cookie over HTTPS."""

    def __init__(self, app: ASGIApp, session_cookie: str, always_secure: bool = False) -> None:
        self.app = app
        self.cookie_prefix = f"{session_cookie}=".encode()
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        secure = https or self.always_secure
        api = scope.get("path", "").startswith(API_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if api:
                    headers.setdefault("Cache-Control", "no-store")
                if secure:
                    message["headers"] = [self._secured(name, value) for name, value in message["headers"]]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _secured(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        """The session cookie's Set-Cookie with `Secure` added; any other header as it was."""
        session = name.lower() == b"set-cookie" and value.startswith(self.cookie_prefix)
        if session and b"secure" not in value.lower().split(b"; "):
            value += b"; secure"
        return name, value
