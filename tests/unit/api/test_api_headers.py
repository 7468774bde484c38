"""Security headers on every response, the session cookie's flags (Secure over HTTPS, directly or through a
trusted proxy only), and Swagger UI served from the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tapewatch.api import create_app
from tapewatch.api.headers import SECURITY_HEADERS
from tapewatch.api.security import SESSION_COOKIE
from tapewatch.store.alert_store import open_store

from .harness import PASSWORD, Api, add_users, api_settings

LOG_IN = {"name": "vic", "password": PASSWORD}


def test_every_kind_of_response_carries_the_security_headers(sqlite_api: Api) -> None:
    api = sqlite_api
    responses = {
        "json": api.get("/api/v1/alerts"),
        "401": api.get("/api/v1/alerts", role=None),
        "403": api.get("/api/v1/audit", role="viewer"),
        "404": api.get("/api/v1/alerts/nope"),
        "422": api.get("/api/v1/alerts", params={"limit": "many"}),
        "no route": api.get("/api/v1/nowhere"),
        "health": api.client.get("/healthz"),
        "metrics": api.client.get("/metrics"),
        "docs": api.client.get("/api/v1/docs"),
        "console": api.client.get("/console/"),
    }
    for kind, response in responses.items():
        for name, value in SECURITY_HEADERS.items():
            if name == "Content-Security-Policy":
                assert "frame-ancestors 'none'" in response.headers[name], kind
            else:
                assert response.headers[name] == value, kind
        assert "strict-transport-security" not in response.headers, kind  # plain HTTP
    for kind in ("json", "401", "403", "404", "422"):
        assert responses[kind].headers["cache-control"] == "no-store", kind
    assert "script-src 'self'" in responses["console"].headers["content-security-policy"]  # its own kept


def test_an_unexpected_error_still_carries_them(tmp_path: Path) -> None:
    app = create_app(api_settings(), db=f"sqlite:///{tmp_path / 'boom.db'}")

    @app.get("/api/v1/boom", dependencies=[])
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom")
    assert response.status_code == 500 and response.json() == {
        "detail": "internal error (logged on the server)"
    }
    assert (
        response.headers["x-content-type-options"] == "nosniff"
        and response.headers["cache-control"] == "no-store"
    )


def cookie_flags(response) -> set[str]:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")]
    return {part.strip().lower().split("=")[0] for part in header.split(";")[1:]}


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cookies.db'}"
    with open_store(url) as store:
        add_users(store)
    return url


@pytest.mark.parametrize(
    ("base", "headers", "trusted", "secure"),
    [
        ("http://testserver", {}, "127.0.0.1", False),
        ("https://testserver", {}, "127.0.0.1", True),  # HTTPS straight to the server
        ("http://testserver", {"X-Forwarded-Proto": "https"}, "testclient", True),  # a trusted proxy says so
        ("http://testserver", {"X-Forwarded-Proto": "https"}, "127.0.0.1", False),  # anyone else: ignored
    ],
)
def test_the_session_cookie_is_secure_whenever_the_request_is_https(
    database: str, base: str, headers: dict[str, str], trusted: str, secure: bool
) -> None:
    app = create_app(api_settings(trusted_proxies=trusted), db=database)
    with TestClient(app, base_url=base) as client:
        response = client.post("/api/v1/session", json=LOG_IN, headers=headers)
        assert response.status_code == 200
        flags = cookie_flags(response)
        assert {"httponly", "samesite", "path", "max-age"} <= flags
        assert ("secure" in flags) == secure
        assert ("strict-transport-security" in response.headers) == secure
        cookie = {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"}  # Secure or not
        ended = client.delete("/api/v1/session", headers={**headers, **cookie})
        assert ("secure" in cookie_flags(ended)) == secure


def test_secure_cookies_forces_the_flag_even_over_http(database: str) -> None:
    with TestClient(create_app(api_settings(secure_cookies=True), db=database)) as client:
        assert "secure" in cookie_flags(client.post("/api/v1/session", json=LOG_IN))


def test_a_trusted_proxy_also_names_the_client_the_throttle_counts(database: str) -> None:
    app = create_app(api_settings(trusted_proxies="testclient"), db=database)
    with TestClient(app) as client:
        for attempt in range(20):
            forwarded = {"X-Forwarded-For": "203.0.113.9"}
            client.post(
                "/api/v1/session", json={"name": f"x{attempt}", "password": "wrong-pass"}, headers=forwarded
            )
        assert client.post("/api/v1/session", json=LOG_IN, headers=forwarded).status_code == 429
        other = {"X-Forwarded-For": "203.0.113.10"}
        assert client.post("/api/v1/session", json=LOG_IN, headers=other).status_code == 200


def test_swagger_ui_is_served_from_the_package_with_no_third_party_script(sqlite_api: Api) -> None:
    client = sqlite_api.client
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/api/v1/docs/") for source in sources), sources
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert "SwaggerUIBundle" in client.get("/api/v1/docs/swagger-ui-bundle.js").text
    assert "/api/v1/openapi.json" in client.get("/api/v1/docs/start.js").text
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "Tapewatch"
    assert client.get("/api/v1/docs/index.html").status_code == 404  # only the files it needs
    assert client.get("/api/v1/redoc").status_code == 404
