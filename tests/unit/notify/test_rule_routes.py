"""The notifications REST endpoints on a real FastAPI app, with the two dependencies the API provides."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient

from tapewatch.api.routes.notifications import make_router
from tapewatch.notify.router import Notifier
from tapewatch.service.actors import Actor
from unit.store.test_store import make_alert

SECRET = "hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"


@pytest.fixture
def client(engine):
    """The router mounted under /api/v1; the caller's role comes from a header (the API's auth stands in)."""

    def get_engine():
        return engine

    def get_actor(x_role: str = Header("admin")) -> Actor:
        return Actor(f"test-{x_role}", x_role)

    app = FastAPI()
    app.include_router(make_router(get_engine, get_actor), prefix="/api/v1")
    with TestClient(app) as test_client:
        yield test_client


def new_rule(client, **body):
    body.setdefault("name", "pumps")
    body.setdefault("destinations", [f"discord://417429632418316298/{SECRET}"])
    return client.post("/api/v1/notifications/rules", json=body)


def test_rules_are_created_read_changed_and_deleted_with_destinations_masked(client):
    created = new_rule(client, typologies=["pump_and_dump"], symbols=["PUMP/USDT"], cooldown_s=60)
    assert created.status_code == 201
    rule = created.json()
    assert rule["destinations"] == ["discord://4...8/h...H"] and rule["cooldown_s"] == 60
    assert client.get("/api/v1/notifications/rules").json() == [rule]
    assert SECRET not in client.get(f"/api/v1/notifications/rules/{rule['id']}").text

    patched = client.patch(
        f"/api/v1/notifications/rules/{rule['id']}", json={"enabled": False, "min_severity": "high"}
    )
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["min_severity"]) == (False, "high")
    assert patched.json()["destinations"] == rule["destinations"]

    assert client.delete(f"/api/v1/notifications/rules/{rule['id']}").status_code == 204
    assert client.get(f"/api/v1/notifications/rules/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"min_severity": "urgent"}, 422, "rule 'pumps': min_severity 'urgent': expected one of"),
        ({"destinations": ["bogus://x"]}, 422, "Apprise knows no service 'bogus'"),
        ({"cooldown_s": -5}, 422, "expected a number of seconds ≥ 0"),
        ({"colour": "red"}, 422, None),  # an unknown field is a typo, not ignored
        ({"cooldown_s": "soon"}, 422, None),
    ],
)
def test_bad_input_is_a_422_with_a_one_line_reason(client, body, status, detail):
    response = new_rule(client, **body)
    assert response.status_code == status
    if detail is not None:
        assert detail in response.json()["detail"]
    assert client.get("/api/v1/notifications/rules").json() == []


def test_roles_and_conflicts(client):
    assert new_rule(client).status_code == 201
    assert new_rule(client).status_code == 409
    viewer = {"X-Role": "viewer"}
    refused = client.post(
        "/api/v1/notifications/rules", json={"name": "mine", "destinations": ["env:X"]}, headers=viewer
    )
    assert refused.status_code == 403 and "needs the admin role" in refused.json()["detail"]
    assert len(client.get("/api/v1/notifications/rules", headers=viewer).json()) == 1  # reading is open


def test_the_delivery_log_is_filtered_and_paged(client, engine, store, webhook, settings):
    hook = f"json://127.0.0.1:{webhook.port}/hook"
    rule = client.post(
        "/api/v1/notifications/rules", json={"name": "all", "destinations": [hook], "cooldown_s": 0}
    )
    alerts = [make_alert(m, symbol=f"S{m}/USDT") for m in range(3)]
    store.save(alerts)
    Notifier(engine, settings).notify(alerts)

    page = client.get("/api/v1/notifications/deliveries", params={"limit": 2}).json()
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (3, 2, 2, 0)
    assert page["items"][0]["alert_id"] == alerts[2].id  # newest first
    rest = client.get("/api/v1/notifications/deliveries", params={"limit": 2, "offset": 2}).json()
    assert [d["alert_id"] for d in rest["items"]] == [alerts[0].id]
    one = client.get("/api/v1/notifications/deliveries", params={"alert_id": alerts[1].id}).json()
    assert one["total"] == 1 and one["items"][0]["rule"] == "all" and one["items"][0]["status"] == "sent"
    by_rule = client.get(
        "/api/v1/notifications/deliveries", params={"rule_id": rule.json()["id"], "status": "failed"}
    )
    assert by_rule.json()["total"] == 0
    assert client.get("/api/v1/notifications/deliveries", params={"status": "lost"}).status_code == 422
    assert client.get("/api/v1/notifications/deliveries", params={"limit": 0}).status_code == 422
    refused = client.delete(f"/api/v1/notifications/rules/{rule.json()['id']}")
    assert refused.status_code == 409
    assert (
        client.delete(f"/api/v1/notifications/rules/{rule.json()['id']}", params={"purge": True}).status_code
        == 204
    )


def test_a_test_message_goes_to_each_destination_of_a_rule(client, webhook, monkeypatch):
    monkeypatch.delenv("TW_NOT_SET", raising=False)
    body = {"name": "t", "destinations": [f"json://127.0.0.1:{webhook.port}/hook", "env:TW_NOT_SET"]}
    rule = client.post("/api/v1/notifications/rules", json=body).json()
    results = client.post(f"/api/v1/notifications/rules/{rule['id']}/test").json()
    assert [(r["ok"], r["attempts"]) for r in results] == [(True, 1), (False, 0)]
    assert "TW_NOT_SET is not set" in results[1]["error"]
    assert webhook.requests[0].json()["title"] == "Tapewatch test notification"
    assert (
        client.post(
            f"/api/v1/notifications/rules/{rule['id']}/test", headers={"X-Role": "analyst"}
        ).status_code
        == 403
    )
