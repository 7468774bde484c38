"""The alert → case → close flow over HTTP, on SQLite and PostgreSQL, with its audit trail."""

from __future__ import annotations

from unit.store.test_store import make_alert

from .harness import Api


def test_an_analyst_takes_alerts_through_a_case_to_closure_and_every_step_is_audited(api: Api) -> None:
    a, b, c = api.save(make_alert(0), make_alert(10), make_alert(20, symbol="OTHER/USDT"))

    listed = api.get("/api/v1/alerts").json()
    assert [item["id"] for item in listed["items"]] == [c.id, b.id, a.id]
    assert {item["status"] for item in listed["items"]} == {"new"}

    assert api.post(f"/api/v1/alerts/{a.id}/acknowledge").json()["status"] == "acknowledged"
    created = api.post("/api/v1/cases", {"title": "PUMP/USDT on 1 March", "alert_ids": [a.id, b.id]})
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["alert_ids"] == [a.id, b.id] and case["created_by"] == "ana" and case["status"] == "open"

    case_url = f"/api/v1/cases/{case['id']}"
    assert api.post(f"{case_url}/assign", {"assignee": "vic"}).json()["assignee"] == "vic"
    comment = api.post(f"{case_url}/comments", {"body": "Telegram group called it at 12:00"})
    assert comment.status_code == 201 and comment.json()["author"] == "ana"
    assert api.post(f"{case_url}/alerts", {"alert_ids": [c.id]}).json()["alert_count"] == 3
    closed = api.post(f"{case_url}/close", {"disposition": "true_positive", "reason": "dump confirmed"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_by"] == "ana"

    for alert in (a, b, c):
        detail = api.get(f"/api/v1/alerts/{alert.id}").json()
        assert (detail["status"], detail["disposition"], detail["case_id"]) == (
            "closed",
            "true_positive",
            case["id"],
        )
    history = api.get(f"/api/v1/alerts/{a.id}").json()["history"]
    assert [entry["action"] for entry in history] == ["alert.acknowledge"]

    case_log = api.get(
        "/api/v1/audit", params={"entity": "case", "entity_id": str(case["id"])}, role="analyst"
    ).json()
    assert [entry["action"] for entry in reversed(case_log["items"])] == [
        "case.create",
        "case.add_alerts",
        "case.assign",
        "case.comment",
        "case.add_alerts",
        "case.close",
    ]
    assert {entry["actor"] for entry in case_log["items"]} == {"ana"}
    detail = api.get(case_url).json()
    assert detail["comments"][0]["body"] == "Telegram group called it at 12:00"
    assert api.get("/api/v1/cases", params={"status": "closed"}).json()["items"][0]["id"] == case["id"]
    assert api.get("/api/v1/cases", params={"status": "open"}).json()["items"] == []


def test_a_lone_alert_is_closed_with_a_disposition_and_cannot_be_closed_twice(api: Api) -> None:
    (alert,) = api.save(make_alert(0))
    url = f"/api/v1/alerts/{alert.id}/close"
    first = api.post(url, {"disposition": "false_positive", "reason": "market maker rebalancing"})
    assert first.status_code == 200 and first.json()["disposition"] == "false_positive"
    again = api.post(url, {"disposition": "benign", "reason": "again"})
    assert again.status_code == 409 and "already closed" in again.json()["detail"]
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge").status_code == 409


def test_workflow_conflicts_and_unknown_records_are_4xx_with_the_reason(api: Api) -> None:
    a, b = api.save(make_alert(0), make_alert(1))
    case = api.post("/api/v1/cases", {"title": "one", "alert_ids": [a.id]}).json()
    taken = api.post("/api/v1/cases", {"title": "two", "alert_ids": [a.id]})
    assert taken.status_code == 409 and f"already in case {case['id']}" in taken.json()["detail"]
    in_case = api.post(f"/api/v1/alerts/{a.id}/close", {"disposition": "benign", "reason": "x"})
    assert in_case.status_code == 409 and "close the case instead" in in_case.json()["detail"]

    assert api.get("/api/v1/alerts/nope").status_code == 404
    assert api.get("/api/v1/cases/999999").json() == {"detail": "case 999999: no such case"}
    missing = api.post("/api/v1/cases", {"title": "ghost", "alert_ids": ["nope"]})
    assert missing.status_code == 404 and "alert nope" in missing.json()["detail"]
    nobody = api.post(f"/api/v1/cases/{case['id']}/assign", {"assignee": "nobody"})
    assert nobody.status_code == 404 and "user 'nobody'" in nobody.json()["detail"]
    assert api.post(f"/api/v1/cases/{case['id']}/assign", {"assignee": None}).json()["assignee"] is None
    assert api.get("/api/v1/alerts", params={"status": "new"}).json()["items"][0]["id"] == b.id
