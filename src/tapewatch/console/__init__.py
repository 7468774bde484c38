"""The analyst web console: a single page of plain HTML, ES modules and CSS, served by the API's app.

There is no front-end build step: the files under `static/` are what the browser runs, and they
talk to the REST + WebSocket API under `/api/v1` with the session cookie it sets. Plotly.js for the
charts comes from the `plotly` Python package (a dependency already), so nothing is vendored here.

Only the files shipped in `static/` are served, by name (no directory walking), and the page is
sent with a Content-Security-Policy that allows scripts from this origin only: alert fields come
from exchanges and people, and the page puts them on screen as text, but the policy is the backstop.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, get_args

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from tapewatch.records import Typology
from tapewatch.store.models import ALERT_STATUSES, DISPOSITIONS, ROLES, SEVERITIES

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules are refused under any other type
    ".css": "text/css; charset=utf-8",
}
POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # plotly.js sets styles on the elements it draws
    "img-src 'self' data: blob:",
    "connect-src 'self'",  # fetch and the live feed's WebSocket, same origin only
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(POLICY)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def mount_console(app: FastAPI) -> None:
    """Serve the console at /console/ (and send / there when nothing else answers it).

    Call it after the API's routes are added; the console's paths never overlap /api/v1.
    """
    assets = {path.name: path for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES}

    @app.get(PREFIX + "/", include_in_schema=False)
    def console_page() -> Response:
        return _file(assets["index.html"], {"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get(PREFIX, include_in_schema=False)
    def console_slash() -> Response:
        return RedirectResponse(PREFIX + "/")

    @app.get(PREFIX + "/vocabulary.json", include_in_schema=False)
    def console_vocabulary() -> Response:
        return JSONResponse(vocabulary(), headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    @app.get(PREFIX + "/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        path = plotly_js_path()
        if path is None:
            raise HTTPException(
                404, "plotly.min.js is missing from the installed plotly package; reinstall plotly"
            )
        # a day: the file changes only when plotly is upgraded, and it is large
        return _file(path, {"Cache-Control": "public, max-age=86400"}, "text/javascript; charset=utf-8")

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    def console_asset(name: str) -> Response:
        path = assets.get(name)
        if path is None:
            raise HTTPException(404, f"console file '{name}': no such file")
        return _file(path)

    if not any(getattr(route, "path", None) == "/" for route in app.routes):

        @app.get("/", include_in_schema=False)
        def root() -> Response:
            return RedirectResponse(PREFIX + "/")


def vocabulary() -> dict[str, Any]:
    """The words the console offers in its menus, from the code that defines them, so the two cannot drift."""
    return {
        "typologies": list(get_args(Typology)),
        "severities": list(SEVERITIES),
        "alert_statuses": list(ALERT_STATUSES),
        "dispositions": list(DISPOSITIONS),
        "roles": list(ROLES),
    }


def plotly_js_path() -> Path | None:
    """plotly.min.js inside the installed plotly package, or None when the package lacks it."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def _file(path: Path, headers: dict[str, str] | None = None, media_type: str | None = None) -> FileResponse:
    # "no-cache" means "check first": an upgraded server's files are picked up on the next load
    merged = {"Cache-Control": "no-cache", **SECURITY_HEADERS, **(headers or {})}
    return FileResponse(path, media_type=media_type or MEDIA_TYPES[path.suffix], headers=merged)
