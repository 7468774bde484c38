"""Who may do what: 401 without credentials, 403 below the role a route needs, sessions and keys."""

from __future__ import annotations

import re
import time

import pytest

from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM
from unit.store.test_store import make_alert

from .harness import PASSWORD, Api, api_settings, database, running_api

OPEN = {("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session")}
"""Routes without authentication: health and metrics for probes, log-in, and forgetting one's own cookie."""
SELF_SERVICE = {("POST", "/api/v1/detect")}
"""What a viewer may send that looks like a change: detection that stores nothing."""


def operations(api: Api) -> list[tuple[str, str]]:
    spec = api.client.get("/api/v1/openapi.json").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def concrete(path: str, alert_id: str, case_id: int, key_id: int) -> str:
    values = {
        "alert_id": alert_id,
        "case_id": case_id,
        "key_id": key_id,
        "rule_id": 1,
        "name": "vic",
        "venue": "binance",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "PUMP/USDT")), path)


@pytest.fixture
def ids(api: Api) -> tuple[str, int, int]:
    (alert,) = api.save(make_alert(0))
    case = api.post("/api/v1/cases", {"title": "t", "alert_ids": [alert.id]}).json()
    key = auth.list_api_keys(api.store.engine, "ada")[0]
    return alert.id, case["id"], key.id


def test_every_route_but_the_open_ones_answers_401_without_credentials(api: Api, ids) -> None:
    checked = 0
    for method, path in operations(api):
        if (method, path) in OPEN:
            continue
        response = api.client.request(method, concrete(path, *ids), json={})
        assert response.status_code == 401, (method, path, response.text)
        assert "authentication required" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked >= 20
    assert api.client.get("/healthz").status_code == 200


def test_a_viewer_reads_everything_but_is_refused_every_change(api: Api, ids) -> None:
    changes = [
        op
        for op in operations(api)
        if op[0] in ("POST", "PATCH", "PUT", "DELETE") and op not in OPEN | SELF_SERVICE
    ]
    assert len(changes) >= 13
    for method, path in changes:
        response = api.client.request(method, concrete(path, *ids), json={}, headers=api.headers("viewer"))
        assert response.status_code == 403, (method, path, response.text)
        assert "vic (viewer) may not do this" in response.json()["detail"]
    alert_id, case_id, _ = ids
    for path in ("/api/v1/alerts", f"/api/v1/alerts/{alert_id}", f"/api/v1/cases/{case_id}", "/api/v1/cases"):
        assert api.get(path, role="viewer").status_code == 200, path
    stored = api.post("/api/v1/detect", {"trades": [_trade()], "store": True}, role="viewer")
    assert stored.status_code == 403 and "analyst" in stored.json()["detail"]
    assert api.get("/api/v1/audit", role="viewer").status_code == 403


def test_an_analyst_works_alerts_but_cannot_manage_users_or_others_keys(api: Api) -> None:
    (alert,) = api.save(make_alert(0))
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge", role="analyst").status_code == 200
    assert api.get("/api/v1/users", role="analyst").status_code == 200
    assert api.post("/api/v1/users", {"name": "eve", "role": "admin"}, role="analyst").status_code == 403
    patched = api.client.patch("/api/v1/users/vic", json={"role": "admin"}, headers=api.headers("analyst"))
    assert patched.status_code == 403
    assert api.post("/api/v1/keys", {"user": "vic"}, role="analyst").status_code == 403
    assert api.get("/api/v1/keys", role="analyst", params={"user": "vic"}).status_code == 403
    assert {key["user"] for key in api.get("/api/v1/keys", role="analyst").json()} == {"ana"}


def test_an_admin_manages_users_and_keys_and_changes_take_effect_at_once(api: Api) -> None:
    made = api.post("/api/v1/users", {"name": "kim", "role": "viewer"}, role="admin")
    assert made.status_code == 201 and made.json()["role"] == "viewer"
    assert api.post("/api/v1/users", {"name": "kim", "role": "viewer"}, role="admin").status_code == 409
    created = api.post("/api/v1/keys", {"user": "kim", "name": "laptop"}, role="admin")
    assert created.status_code == 201
    secret, key = created.json()["secret"], created.json()["key"]
    assert secret.startswith("tw_") and "secret" not in key
    kim = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/session", headers=kim).json() == {"user": "kim", "role": "viewer"}
    assert api.client.post(f"/api/v1/alerts/{make_alert(0).id}/acknowledge", headers=kim).status_code == 403

    promoted = api.client.patch("/api/v1/users/kim", json={"role": "analyst"}, headers=api.headers("admin"))
    assert promoted.status_code == 200 and promoted.json()["role"] == "analyst"
    assert api.client.get("/api/v1/session", headers=kim).json()["role"] == "analyst"
    listed = api.get("/api/v1/keys", role="admin").json()
    assert {k["user"] for k in listed} == {"vic", "ana", "ada", "kim"}
    assert all("secret" not in k for k in listed)

    revoked = api.client.delete(f"/api/v1/keys/{key['id']}", headers=api.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = api.client.get("/api/v1/session", headers=kim)
    assert refused.status_code == 401 and "not accepted" in refused.json()["detail"]
    audit = api.get("/api/v1/audit", role="admin", params={"entity": "user"}).json()["items"]
    assert [(e["action"], e["actor"]) for e in audit][:2] == [("user.role", "ada"), ("user.create", "ada")]


def test_a_key_works_in_either_header_and_a_wrong_one_is_401(api: Api) -> None:
    key = api.keys["analyst"]
    assert api.client.get("/api/v1/session", headers={"X-API-Key": key}).json()["user"] == "ana"
    for bad in ("tw_nope", key[:-2] + "xx", ""):
        response = api.client.get("/api/v1/session", headers={"X-API-Key": bad})
        assert response.status_code == 401, bad
    wrong_bearer = api.client.get(
        "/api/v1/alerts", headers={"Authorization": "Bearer tw_AAAAAAAA_" + "x" * 30}
    )
    assert wrong_bearer.status_code == 401 and "not accepted" in wrong_bearer.json()["detail"]


def test_a_console_session_by_password_lasts_until_log_out(api: Api) -> None:
    refused = api.client.post("/api/v1/session", json={"name": "ana", "password": "wrong-password"})
    assert refused.status_code == 401 and "log-in refused" in refused.json()["detail"]
    logged = api.client.post("/api/v1/session", json={"name": "ana", "password": PASSWORD})
    assert logged.status_code == 200 and logged.json() == {"user": "ana", "role": "analyst"}
    cookie = logged.headers["set-cookie"]
    assert (
        "tapewatch_session=" in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    )
    assert PASSWORD not in cookie
    (alert,) = api.save(make_alert(0))
    assert api.client.get("/api/v1/session").json()["user"] == "ana"
    acknowledged = api.client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers={"Origin": "http://testserver"}
    )
    assert acknowledged.status_code == 200

    assert api.client.delete("/api/v1/session").status_code == 204
    assert api.client.get("/api/v1/session").status_code == 401


def test_a_session_refuses_cross_site_changes_and_ends_with_its_key(api: Api) -> None:
    created = auth.create_api_key(api.store.engine, SYSTEM, "ana", "console")
    key, secret = created
    assert api.client.post("/api/v1/session", json={"api_key": secret}).json()["user"] == "ana"
    (alert,) = api.save(make_alert(0))
    forged = api.client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403 and "cross-site" in forged.json()["detail"]
    assert api.client.get("/api/v1/alerts", headers={"Origin": "https://evil.example"}).status_code == 200

    revoked = api.client.delete(f"/api/v1/keys/{key.id}", headers=api.headers("admin"))
    assert revoked.status_code == 200
    ended = api.client.get("/api/v1/session")
    assert ended.status_code == 401 and "log in again" in ended.json()["detail"]
    neither = api.client.post("/api/v1/session", json={"name": "ana"})
    assert (
        neither.status_code == 422
        and "either 'name' and 'password', or 'api_key'" in neither.json()["detail"]
    )


def _trade() -> dict:
    return {"ts": "2024-03-01T00:00:00Z", "symbol": "AAA/BTC", "price": 1.0, "amount": 1.0}


def test_changes_made_elsewhere_apply_once_the_auth_cache_expires(tmp_path) -> None:
    """A key revoked or a role changed by another process (the CLI) stops working within auth_cache_s."""
    with (
        database("sqlite", tmp_path) as url,
        running_api(url, tmp_path, api_settings(auth_cache_s=1.0)) as api,
    ):
        assert api.get("/api/v1/session", role="analyst").json()["role"] == "analyst"
        assert api.get("/api/v1/session", role="viewer").status_code == 200
        auth.set_role(api.store.engine, SYSTEM, "ana", "viewer")
        auth.revoke_api_key(api.store.engine, SYSTEM, auth.list_api_keys(api.store.engine, "vic")[0].id)
        assert api.get("/api/v1/session", role="viewer").status_code == 200  # still trusted for a moment
        time.sleep(1.05)
        assert api.get("/api/v1/session", role="analyst").json()["role"] == "viewer"
        assert api.get("/api/v1/session", role="viewer").status_code == 401


def test_secrets_sent_in_a_bad_request_are_not_echoed_back(api: Api) -> None:
    for body in ({"name": "ana", "password": 31337_31337}, {"api_key": ["tw_secretish_value_1234567890"]}):
        response = api.client.post("/api/v1/session", json=body)
        assert response.status_code == 422
        assert "31337" not in response.text and "secretish" not in response.text
    whole = api.client.post("/api/v1/session", json="hunter2-hunter2")
    assert whole.status_code == 422 and "hunter2" not in whole.text
    short = api.post("/api/v1/users", {"name": "zed", "role": "viewer", "password": "short1"}, role="admin")
    assert short.status_code == 422 and "body: password" in short.text and "short1" not in short.text
