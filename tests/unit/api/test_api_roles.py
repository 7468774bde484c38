"""Roles on every route: each declares its access one way, and every credential gets what it declares.

`ROLE_OF` is the policy written down: a route missing from it, or declaring
something else, fails here, so a new route cannot ship without a decision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tapewatch.api.security import ACCESS, SESSION_COOKIE
from tapewatch.service import auth
from tapewatch.service.actors import RANK, SYSTEM
from unit.store.test_store import make_alert

from .harness import PASSWORD, Api

ROLE_OF = {
    ("GET", "/api/v1/alerts"): "viewer",
    ("GET", "/api/v1/alerts/{alert_id}"): "viewer",
    ("GET", "/api/v1/alerts/{alert_id}/market"): "viewer",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "analyst",
    ("POST", "/api/v1/alerts/{alert_id}/close"): "analyst",
    ("GET", "/api/v1/cases"): "viewer",
    ("POST", "/api/v1/cases"): "analyst",
    ("GET", "/api/v1/cases/{case_id}"): "viewer",
    ("POST", "/api/v1/cases/{case_id}/alerts"): "analyst",
    ("POST", "/api/v1/cases/{case_id}/assign"): "analyst",
    ("POST", "/api/v1/cases/{case_id}/comments"): "analyst",
    ("POST", "/api/v1/cases/{case_id}/close"): "analyst",
    ("GET", "/api/v1/instruments"): "viewer",
    ("GET", "/api/v1/risk/{venue}/{symbol}"): "viewer",
    ("GET", "/api/v1/risk"): "viewer",
    ("GET", "/api/v1/data-quality"): "viewer",
    ("POST", "/api/v1/detect"): "viewer",  # stores nothing unless asked, and then needs analyst
    ("GET", "/api/v1/users"): "analyst",
    ("POST", "/api/v1/users"): "admin",
    ("PATCH", "/api/v1/users/{name}"): "admin",
    ("PUT", "/api/v1/users/{name}/password"): "admin",
    ("DELETE", "/api/v1/users/{name}"): "admin",
    ("POST", "/api/v1/keys"): "admin",
    ("GET", "/api/v1/keys"): "viewer",  # one's own
    ("DELETE", "/api/v1/keys/{key_id}"): "analyst",  # one's own; anyone's for an admin
    ("GET", "/api/v1/audit"): "analyst",
    ("GET", "/api/v1/session"): "viewer",
    ("POST", "/api/v1/session"): "public",
    ("DELETE", "/api/v1/session"): "public",
    ("WEBSOCKET", "/api/v1/ws/alerts"): "viewer",
    ("GET", "/healthz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/api/v1/docs"): "public",
    ("GET", "/api/v1/docs/start.js"): "public",
    ("GET", "/api/v1/docs/{name}"): "public",
    ("GET", "/api/v1/notifications/rules"): "viewer",
    ("POST", "/api/v1/notifications/rules"): "admin",
    ("GET", "/api/v1/notifications/rules/{rule_id}"): "viewer",
    ("PATCH", "/api/v1/notifications/rules/{rule_id}"): "admin",
    ("DELETE", "/api/v1/notifications/rules/{rule_id}"): "admin",
    ("POST", "/api/v1/notifications/rules/{rule_id}/test"): "admin",
    ("GET", "/api/v1/notifications/deliveries"): "viewer",
    ("GET", "/console/"): "public",
    ("GET", "/console"): "public",
    ("GET", "/console/vocabulary.json"): "public",
    ("GET", "/console/vendor/plotly.min.js"): "public",
    ("GET", "/console/{name}"): "public",
    ("GET", "/"): "public",
}
CREDENTIALS = ("none", "bad key", "revoked key", "ended session", "viewer", "analyst", "admin")


def declarations(app: FastAPI) -> dict[tuple[str, str], set[str]]:
    """Every route of the app (HTTP and WebSocket) → the access its dependencies declare."""
    found: dict[tuple[str, str], set[str]] = {}
    for route in iter_route_contexts(app.routes):
        declared = {ACCESS[call] for call in _calls(route.dependant) if call in ACCESS}
        path = re.sub(r":\w+\}", "}", route.path)
        for method in sorted(route.methods or {"WEBSOCKET"}):
            if method != "HEAD":
                found[(method, path)] = declared
    return found


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_every_route_declares_exactly_the_access_the_policy_gives_it(api: Api) -> None:
    declared = declarations(api.client.app)
    assert set(declared) == set(ROLE_OF), "routes and ROLE_OF differ: decide the new route's role"
    for route, roles in declared.items():
        assert roles == {ROLE_OF[route]}, (route, roles)


def test_a_route_that_declares_nothing_is_caught(api: Api) -> None:
    app = api.another_app()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    assert declarations(app)[("GET", "/api/v1/forgotten")] == set()


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """Records for the paths to name, a spare key per role, a revoked key and an ended session's cookie."""
    engine = api.store.engine
    (alert,) = api.save(make_alert(0))
    case = api.post("/api/v1/cases", {"title": "t", "alert_ids": [alert.id]}).json()
    auth.create_user(engine, SYSTEM, "zed", "viewer")
    spare = {role: auth.create_api_key(engine, SYSTEM, name, "spare")[0].id for role, name in USERS.items()}
    revoked, revoked_secret = auth.create_api_key(engine, SYSTEM, "ada", "gone")
    auth.revoke_api_key(engine, SYSTEM, revoked.id)
    with TestClient(api.another_app()) as browser:
        browser.post("/api/v1/session", json={"name": "ada", "password": PASSWORD})
        cookie = browser.cookies[SESSION_COOKIE]
        assert browser.delete("/api/v1/session").status_code == 204
    return {"alert": alert.id, "case": case["id"], "spare": spare, "revoked": revoked_secret, "ended": cookie}


USERS = {"viewer": "vic", "analyst": "ana", "admin": "ada"}


def credential_headers(api: Api, world: dict[str, Any], credential: str) -> dict[str, str]:
    if credential in USERS:
        return api.headers(credential)
    return {
        "none": {},
        "bad key": {"Authorization": "Bearer tw_AAAAAAAA_" + "x" * 30},
        "revoked key": {"Authorization": f"Bearer {world['revoked']}"},
        "ended session": {"Cookie": f"{SESSION_COOKIE}={world['ended']}"},
    }[credential]


def concrete(path: str, world: dict[str, Any], credential: str) -> str:
    values = {
        "alert_id": world["alert"],
        "case_id": world["case"],
        "key_id": world["spare"].get(credential, 1),  # one's own spare key
        "rule_id": 1,
        "name": "zed" if "/users/" in path else "swagger-ui.css",
        "venue": "binance",
        "symbol": "PUMP/USDT",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def expected(role: str, credential: str) -> str:
    """What the credential must get on a route needing `role`: 401, 403, or in (anything but those)."""
    if role == "public":
        return "in"
    if credential not in USERS:
        return "401"
    return "in" if RANK[credential] >= RANK[role] else "403"


def test_every_route_answers_every_credential_as_its_role_says(api: Api, world: dict[str, Any]) -> None:
    checked = 0
    for credential in CREDENTIALS:  # the admin last: it may remove zed or revoke its spare key
        headers = credential_headers(api, world, credential)
        for (method, path), role in ROLE_OF.items():
            if method == "WEBSOCKET":
                continue
            api.client.cookies.clear()
            url = concrete(path, world, credential)
            body = {} if method in ("POST", "PATCH", "PUT") else None
            response = api.client.request(method, url, json=body, headers=headers)
            outcome = expected(role, credential)
            if outcome == "in":
                assert response.status_code not in (401, 403), (credential, method, path, response.text)
            else:
                assert response.status_code == int(outcome), (credential, method, path, response.text)
            assert response.status_code < 500, (credential, method, path, response.text)
            checked += 1
    assert checked == len(CREDENTIALS) * (len(ROLE_OF) - 1)


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_the_live_feed_answers_every_credential_as_its_role_says(
    api: Api, world: dict[str, Any], credential: str
) -> None:
    headers = credential_headers(api, world, credential)
    with api.client.websocket_connect("/api/v1/ws/alerts", headers=headers) as socket:
        if credential == "none":
            socket.send_text('{"token": "tw_nothing"}')
        if expected("viewer", credential) == "401":
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_text()
            assert closed.value.code == 4401
        else:
            subscribed(api)  # an alert saved before the feed subscribed this client is not pushed to it
            api.save(make_alert(5))
            assert '"typology"' in socket.receive_text()


def subscribed(api: Api) -> None:
    """Until the app's metrics show one subscribed WebSocket client."""
    deadline = time.monotonic() + 10
    while "tapewatch_ws_clients 1.0" not in api.client.get("/metrics").text:
        assert time.monotonic() < deadline, "the feed never subscribed the client"
        time.sleep(0.02)


def test_a_viewer_changes_nothing_not_even_its_own_keys(api: Api) -> None:
    own = auth.list_api_keys(api.store.engine, "vic")[0]
    for role in ("viewer", "analyst"):
        made = api.post("/api/v1/keys", {"user": USERS[role]}, role=role)
        assert made.status_code == 403 and "needs the admin role" in made.json()["detail"]
    revoked = api.client.delete(f"/api/v1/keys/{own.id}", headers=api.headers("viewer"))
    assert revoked.status_code == 403 and "needs the analyst role" in revoked.json()["detail"]
    assert api.get("/api/v1/session", role="viewer").status_code == 200  # the key still works
    ana_key = auth.list_api_keys(api.store.engine, "ana")[0]
    assert api.client.delete(f"/api/v1/keys/{ana_key.id}", headers=api.headers("analyst")).status_code == 200
    assert api.get("/api/v1/session", role="analyst").status_code == 401  # an analyst may revoke its own
