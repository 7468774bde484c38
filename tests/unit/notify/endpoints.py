"""Real endpoints on 127.0.0.1 for delivery tests: an HTTP server standing in for webhook and chat
hosts, and an SMTP server (aiosmtpd) for e-mail. Both record exactly what arrived."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    """One HTTP request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    """What the server answered."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookServer:
    """Answers every request with 200 (or the body a path prefix asks for), except the first `fail_first`,
    and the first `fail_first_per_key` of each idempotency key, which get `fail_status`."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0
    fail_first_per_key: int = 0
    fail_status: int = 500
    replies: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # path prefix → status, type, body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered(self) -> dict[str, int]:
        """Requests answered 200, by idempotency key: what a receiver that deduplicates would keep once."""
        keys = [r.headers.get("Idempotency-Key", "") for r in self.requests if r.status == 200]
        return {key: keys.count(key) for key in keys}

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(request.method, request.path, dict(request.headers), await request.read())
        key = received.headers.get("Idempotency-Key")
        repeat = sum(r.headers.get("Idempotency-Key") == key for r in self.requests) if key else None
        self.requests.append(received)
        first_ones = repeat is not None and repeat < self.fail_first_per_key
        response = self._reply(request.path, len(self.requests) <= self.fail_first or first_ones)
        received.status = response.status
        return response

    def _reply(self, path: str, fail: bool) -> web.Response:
        if fail:
            return web.Response(status=self.fail_status, text="temporarily broken")
        for prefix, (status, content_type, body) in self.replies.items():
            if path.startswith(prefix):
                return web.Response(status=status, content_type=content_type, text=body)
        return web.Response(status=200, text="ok")


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """An aiohttp server on a free port of 127.0.0.1, in its own thread, for the duration of the block."""
    server = WebhookServer()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._handle)
    runner = web.AppRunner(app)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.port = runner.addresses[0][1]
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the local webhook server did not start")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Mailbox:
    """What the SMTP server received: messages, their envelopes, and the logins it accepted."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def text_of(message: EmailMessage) -> str:
    """Every text part of an e-mail, decoded, joined (Apprise may send plain text, HTML or both)."""
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An aiosmtpd server on 127.0.0.1 accepting AUTH without TLS (the test has no certificate)."""
    mailbox = Mailbox(port=_free_port())
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
