"""`tapewatch serve`: the API and console under uvicorn.

Kept free of heavy imports at module level so that registering the command
does not slow every other `tapewatch` command down. With `--workers N`, uvicorn
runs N processes, each building its own app (`app_from_environment`): each has
its own live-feed poller and its own /metrics counts (and its own log-in throttle).
Proxy headers are the app's business (`api.trusted_proxies`), not uvicorn's: it
is told to leave them alone, so they are believed from one configured place only.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tapewatch.cli.options import ConfigOption, DbOption
from tapewatch.errors import InputError
from tapewatch.extras import require

if TYPE_CHECKING:
    from fastapi import FastAPI

WS_MAX_MESSAGE = 64 * 1024
"""Clients only ever send one small authentication message."""
SERVE_DB, SERVE_LAKE = "TAPEWATCH_SERVE_DB", "TAPEWATCH_SERVE_LAKE"
"""How `serve --workers N` tells its worker processes the --db and --lake it was given."""
SERVICE_MODULES = ("fastapi", "uvicorn", "prometheus_client", "itsdangerous", "apprise", "swagger_ui_bundle")
"""The [service] extra's libraries, by import name."""


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port (default: api.port, 8400).")
    ] = None,
    db: DbOption = None,
    lake: Annotated[str | None, typer.Option(help="Parquet lake folder (default: store.lake).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (one per core the API may use).")
    ] = 1,
    config: ConfigOption = None,
) -> None:
    """Serve the REST + WebSocket API and the analyst console."""
    require("service", *SERVICE_MODULES, command="serve")
    import uvicorn

    from tapewatch.api.app import create_app
    from tapewatch.api.logs import redact_server_logs
    from tapewatch.config import load_settings

    settings = load_settings(config)
    host = host or settings.api.host
    port = port or settings.api.port
    check_port_free(host, port)
    app = create_app(settings, db=db, lake=lake)  # opens and migrates the database once, here
    options = {
        "host": host,
        "port": port,
        "ws_max_size": WS_MAX_MESSAGE,
        "server_header": False,
        "proxy_headers": False,  # the app reads them, from api.trusted_proxies only
    }
    if workers == 1:
        redact_server_logs()
        uvicorn.run(app, **options)
        return
    app.state.context.store.close()
    _hand_over(settings.api.session_secret, db, lake, config)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


def _hand_over(session_secret: str, db: str | None, lake: str | None, config: Path | None) -> None:
    """What worker processes need, through the environment they inherit.

    Every worker must sign sessions with the same secret, or a cookie set by
    one is refused by the next: when none is configured, one is drawn here.
    """
    if not session_secret:
        os.environ["TAPEWATCH_API__SESSION_SECRET"] = secrets.token_urlsafe(32)
    for name, value in ((SERVE_DB, db), (SERVE_LAKE, lake), ("TAPEWATCH_CONFIG", config)):
        if value is not None:
            os.environ[name] = str(value)


def app_from_environment() -> FastAPI:
    """The app of one worker process of `serve --workers N` (see `_hand_over`)."""
    from tapewatch.api.app import create_app
    from tapewatch.api.logs import redact_server_logs
    from tapewatch.config import load_settings

    redact_server_logs()
    return create_app(load_settings(), db=os.environ.get(SERVE_DB), lake=os.environ.get(SERVE_LAKE))


def check_port_free(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's log and exit, when the address cannot be used."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(
            f"--host '{host}': not an address this machine can listen on ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"--port {port}: already in use on {host}; choose another port") from None
            raise InputError(f"--host '{host}' --port {port}: cannot listen there ({exc.strerror})") from None
