"""/openapi.json, and /docs: Swagger UI over it, served from the `swagger-ui-bundle` package, never a CDN.

The page works offline, and the only scripts it runs are this server's: its
Content-Security-Policy allows scripts from this origin only (the start-up code
is a file of its own rather than an inline script). ReDoc is not offered.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Public

router = APIRouter(prefix=API_PREFIX, include_in_schema=False, dependencies=[Public])
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
POLICY = (
    "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "  # Swagger UI styles the elements it draws
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tapewatch API</title>
<link rel="stylesheet" href="{API_PREFIX}/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="{API_PREFIX}/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{API_PREFIX}/docs/swagger-ui-bundle.js"></script>
<script src="{API_PREFIX}/docs/start.js"></script>
</body>
</html>
"""
START = f"""SwaggerUIBundle({{
  url: "{API_PREFIX}/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
}});
"""


@router.get("/openapi.json")
def openapi_schema(request: Request) -> Response:
    """The OpenAPI schema of the whole API."""
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs_page() -> Response:
    """The Swagger UI page."""
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"})


@router.get("/docs/start.js")
def docs_start() -> Response:
    """Swagger UI's start-up: load this server's schema."""
    return Response(START, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/docs/{name}")
def docs_asset(name: str) -> Response:
    """One of Swagger UI's own files, from the installed package (cached a day: it changes on upgrade)."""
    if name not in ASSETS:
        raise HTTPException(404, f"docs file '{name}': no such file")
    return FileResponse(
        swagger_ui_folder() / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


def swagger_ui_folder() -> Path:
    """Where the installed swagger-ui-bundle package keeps Swagger UI's files."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))
