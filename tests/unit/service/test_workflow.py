"""Alert and case workflow, the audit log, users and API keys, on SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tapewatch.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM, Actor
from tapewatch.service.audit import history
from tapewatch.service.workflow import Workflow
from tapewatch.store.alert_store import AlertStore, open_store
from unit.store.test_store import BACKENDS, make_alert, postgres_schema

ANALYST = Actor("ana", "analyst")
VIEWER = Actor("vic", "viewer")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        with open_store(tmp_path / "t.db") as opened:
            yield opened
        return
    with postgres_schema() as url, open_store(url) as opened:
        yield opened


@pytest.fixture
def engine(store: AlertStore) -> Engine:
    for name, role in (("ana", "analyst"), ("vic", "viewer"), ("bob", "analyst")):
        auth.create_user(store.engine, SYSTEM, name, role)
    return store.engine


def test_an_alert_goes_from_new_to_a_closed_case_and_every_step_is_audited(store, engine):
    a, b, c = make_alert(0), make_alert(10), make_alert(20)
    store.save([a, b, c])
    flow = Workflow(engine)

    assert flow.alert_state(a.id).status == "new"
    assert flow.acknowledge(ANALYST, a.id).status == "acknowledged"
    case = flow.create_case(ANALYST, "PUMP/USDT pump on 1 March", [a.id, b.id])
    assert case.status == "open" and case.alert_ids == [a.id, b.id] and case.created_by == "ana"
    assert flow.alert_state(b.id).status == "in_case" and flow.alert_state(b.id).case_id == case.id
    assert flow.assign(ANALYST, case.id, "bob").assignee == "bob"
    flow.comment(ANALYST, case.id, "Telegram group announced it at 12:00")
    closed = flow.close_case(ANALYST, case.id, "true_positive", "coordinated buying, confirmed dump")

    assert closed.status == "closed" and closed.closed_by == "ana" and closed.comments[0].author == "ana"
    for alert_id in (a.id, b.id):
        state = flow.alert_state(alert_id)
        assert (state.status, state.disposition) == ("closed", "true_positive")
    assert flow.alert_state(c.id).status == "new"
    store.save([a])  # the detector sees it again: the workflow is untouched
    assert flow.alert_state(a.id).status == "closed"
    assert {x.id for x in store.list(status="closed", limit=None)} == {a.id, b.id}
    assert {x.id for x in store.list(case_id=case.id, limit=None)} == {a.id, b.id}

    actions = [(e.actor, e.action) for e in reversed(history(engine, "case", case.id))]
    assert actions == [
        ("ana", "case.create"),
        ("ana", "case.add_alerts"),
        ("ana", "case.assign"),
        ("ana", "case.comment"),
        ("ana", "case.close"),
    ]
    assert history(engine, "alert", a.id)[0].action == "alert.acknowledge"
    assert [c.title for c in flow.cases(status="closed")] == ["PUMP/USDT pump on 1 March"]


def test_a_viewer_can_read_but_change_nothing(store, engine):
    alert = make_alert()
    store.save([alert])
    flow = Workflow(engine)
    case = flow.create_case(ANALYST, "a case", [alert.id])
    for change in (
        lambda: flow.acknowledge(VIEWER, alert.id),
        lambda: flow.close_alert(VIEWER, alert.id, "benign", "news"),
        lambda: flow.create_case(VIEWER, "mine", [alert.id]),
        lambda: flow.assign(VIEWER, case.id, "vic"),
        lambda: flow.comment(VIEWER, case.id, "hello"),
        lambda: flow.close_case(VIEWER, case.id, "benign", "news"),
        lambda: auth.create_user(engine, VIEWER, "eve", "admin"),
        lambda: auth.create_api_key(engine, VIEWER, "ana"),
    ):
        with pytest.raises(PermissionDeniedError, match="vic \\(viewer\\) may not"):
            change()
    assert flow.case(case.id).comments == [] and flow.case(case.id).assignee is None
    assert len(history(engine)) == 5  # three users, the case and its alert: nothing from the viewer


def test_changes_that_the_state_does_not_allow_are_conflicts(store, engine):
    a, b, c = make_alert(0), make_alert(10), make_alert(20)
    store.save([a, b, c])
    flow = Workflow(engine)
    flow.acknowledge(ANALYST, a.id)
    with pytest.raises(ConflictError, match="only a new alert can be acknowledged"):
        flow.acknowledge(ANALYST, a.id)
    case = flow.create_case(ANALYST, "one", [a.id])
    with pytest.raises(ConflictError, match=f"in case {case.id}: close the case instead"):
        flow.close_alert(ANALYST, a.id, "benign", "x")
    with pytest.raises(ConflictError, match="already in case"):
        flow.create_case(ANALYST, "two", [b.id, a.id])
    assert flow.alert_state(b.id).status == "new"  # the failed case creation left nothing behind
    assert [x.title for x in flow.cases()] == ["one"]
    flow.close_alert(ANALYST, c.id, "false_positive", "exchange maintenance")
    with pytest.raises(ConflictError, match="closed: it cannot join"):
        flow.add_alerts(ANALYST, case.id, [c.id])
    flow.close_case(ANALYST, case.id, "benign", "listing news")
    with pytest.raises(ConflictError, match="is closed"):
        flow.close_case(ANALYST, case.id, "benign", "again")
    with pytest.raises(NotFoundError, match="alert nope: no such alert"):
        flow.acknowledge(ANALYST, "nope")
    with pytest.raises(NotFoundError, match="case 999"):
        flow.comment(ANALYST, 999, "x")
    with pytest.raises(NotFoundError, match="user 'zed'"):
        flow.create_case(ANALYST, "three", [b.id], assignee="zed")
    with pytest.raises(InputError, match="disposition 'guilty'"):
        flow.close_alert(ANALYST, b.id, "guilty", "x")
    with pytest.raises(InputError, match="reason: expected 1"):
        flow.close_alert(ANALYST, b.id, "benign", "   ")


def test_the_audit_log_refuses_updates_and_deletes(store, engine):
    auth.create_user(engine, SYSTEM, "eve", "viewer")
    for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert {e.actor for e in history(engine)} == {"system"}


def test_api_keys_authenticate_until_revoked_and_are_stored_hashed(store, engine):
    key, secret = auth.create_api_key(engine, SYSTEM, "ana", "laptop")
    assert secret.startswith(f"tw_{key.prefix}_") and auth.authenticate_key(engine, secret) == ANALYST
    assert auth.list_api_keys(engine, "ana")[0].last_used_at is not None
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM api_keys")).scalar_one()
    assert secret.split("_", 2)[2] not in stored and len(stored) == 64
    assert auth.authenticate_key(engine, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert auth.authenticate_key(engine, "tw_short") is None and auth.authenticate_key(engine, "") is None
    with pytest.raises(PermissionDeniedError):
        auth.revoke_api_key(engine, Actor("bob", "analyst"), key.id)  # not his key
    assert auth.revoke_api_key(engine, ANALYST, key.id).revoked_at is not None
    assert auth.authenticate_key(engine, secret) is None


def test_users_passwords_and_roles(store, engine):
    auth.create_user(engine, SYSTEM, "root", "admin", password="correct horse")
    assert auth.authenticate_password(engine, "root", "correct horse") == Actor("root", "admin")
    assert auth.authenticate_password(engine, "root", "wrong horse") is None
    assert auth.authenticate_password(engine, "ana", "anything") is None  # no password set
    with pytest.raises(ConflictError, match="user 'root' already exists"):
        auth.create_user(engine, SYSTEM, "root", "viewer")
    with pytest.raises(InputError, match="role 'boss'"):
        auth.create_user(engine, SYSTEM, "carl", "boss")
    with pytest.raises(InputError, match="at least 8"):
        auth.create_user(engine, SYSTEM, "carl", "viewer", password="short")
    assert auth.set_role(engine, SYSTEM, "vic", "analyst").role == "analyst"
    assert [u.name for u in auth.list_users(engine)] == ["ana", "bob", "root", "vic"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_from_before_migrations_is_upgraded_keeping_its_alerts(backend, tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from tapewatch.store.schema import alembic_config, head_revision

    def scenario(url: str) -> None:
        legacy = create_engine(url)
        with legacy.begin() as conn:  # the tables the first versions made, with no alembic_version
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(
                text(
                    'INSERT INTO alerts (id, typology, venue, symbol, start, "end", detected_at, score, '
                    "severity, detector, evidence, followup, status, created_at) VALUES ('old1', "
                    "'pump_and_dump', 'binance', 'OLD/BTC', :t, :t, :t, 0.5, 'high', 'pump_onset', '{}', "
                    "'{}', 'new', :t)"
                ),
                {"t": make_alert().detected_at},
            )
        legacy.dispose()
        with open_store(url) as store:  # opens, stamps the baseline, upgrades
            assert [a.symbol for a in store.list(limit=None)] == ["OLD/BTC"]
            assert Workflow(store.engine).alert_state("old1").status == "new"
            assert {"cases", "audit_log", "api_keys", "deliveries"} <= set(
                inspect(store.engine).get_table_names()
            )
            with store.engine.connect() as conn:
                assert (
                    conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                    == head_revision()
                )

    if backend == "sqlite":
        scenario(f"sqlite:///{tmp_path / 'legacy.db'}")
    else:
        with postgres_schema() as url:
            scenario(url)
