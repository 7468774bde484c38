"""Working alerts: acknowledge, group into cases, assign, comment, close with a disposition.

    alert:  new → acknowledged → in_case → closed        (or new/acknowledged → closed directly)
    case:   open → closed    (closing a case closes its alerts with the case's disposition)

Every change checks the actor's role (analyst or above), checks the current
state inside the same transaction that changes it (so two analysts racing get
one success and one ConflictError, not a mixed state), and writes its audit entry
in that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, func, insert, select, update

from tapewatch.errors import ConflictError, InputError, NotFoundError
from tapewatch.service import audit
from tapewatch.service.actors import Actor
from tapewatch.store.models import DISPOSITIONS, AlertRow, CaseRow, CommentRow, UserRow, utc_now

ALERTS = AlertRow.__table__
CASES = CaseRow.__table__
COMMENTS = CommentRow.__table__
USERS = UserRow.__table__
MAX_TEXT = 10_000
_STATE_COLUMNS = [
    ALERTS.c[name] for name in ("id", "status", "case_id", "disposition", "reason", "updated_at")
]


class AlertState(BaseModel):
    """An alert's place in the workflow (the detection itself never changes)."""

    id: str
    status: str
    case_id: int | None
    disposition: str | None
    reason: str | None
    updated_at: datetime | None


class Case(BaseModel):
    id: int
    title: str
    status: str
    assignee: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    disposition: str | None
    reason: str | None
    closed_at: datetime | None
    closed_by: str | None
    alert_count: int = 0


class Comment(BaseModel):
    id: int
    case_id: int
    author: str
    body: str
    created_at: datetime


class CaseDetail(Case):
    alert_ids: list[str]
    comments: list[Comment]


class Workflow:
    """The workflow on one database; the API and CLI share it, so the rules cannot differ."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- alerts -----------------------------------------------------------------------------

    def alert_state(self, alert_id: str) -> AlertState:
        with self.engine.connect() as conn:
            return self._alert(conn, alert_id)

    def alert_states(self, alert_ids: Sequence[str]) -> dict[str, AlertState]:
        """Workflow states of many alerts at once (for listing pages)."""
        query = select(*_STATE_COLUMNS).where(ALERTS.c.id.in_(list(alert_ids)))
        with self.engine.connect() as conn:
            return {row.id: AlertState.model_validate(row._asdict()) for row in conn.execute(query)}

    def acknowledge(self, actor: Actor, alert_id: str) -> AlertState:
        """new → acknowledged: someone has seen it and is on it."""
        actor.require("analyst")
        with self.engine.begin() as conn:
            state = self._alert(conn, alert_id, lock=True)
            if state.status != "new":
                raise ConflictError(
                    f"alert {alert_id} is {state.status}: only a new alert can be acknowledged"
                )
            self._set_alerts(conn, [alert_id], status="acknowledged")
            audit.record(conn, actor, "alert.acknowledge", "alert", alert_id)
            return self._alert(conn, alert_id)

    def close_alert(self, actor: Actor, alert_id: str, disposition: str, reason: str) -> AlertState:
        """Close an alert that is not in a case (a case's alerts close with the case)."""
        actor.require("analyst")
        _check_disposition(disposition)
        reason = _text(reason, "reason")
        with self.engine.begin() as conn:
            state = self._alert(conn, alert_id, lock=True)
            if state.status == "closed":
                raise ConflictError(f"alert {alert_id} is already closed ({state.disposition})")
            if state.status == "in_case":
                raise ConflictError(f"alert {alert_id} is in case {state.case_id}: close the case instead")
            self._set_alerts(conn, [alert_id], status="closed", disposition=disposition, reason=reason)
            audit.record(
                conn, actor, "alert.close", "alert", alert_id, disposition=disposition, reason=reason
            )
            return self._alert(conn, alert_id)

    # -- cases ------------------------------------------------------------------------------

    def create_case(
        self, actor: Actor, title: str, alert_ids: Sequence[str], assignee: str | None = None
    ) -> CaseDetail:
        """A new open case holding these alerts (none closed, none in another case)."""
        actor.require("analyst")
        title = _text(title, "title", 200)
        ids = _unique_ids(alert_ids)
        with self.engine.begin() as conn:
            if assignee is not None:
                self._check_user(conn, assignee)
            now = utc_now()
            case_id = conn.execute(
                insert(CASES)
                .values(
                    title=title,
                    status="open",
                    assignee=assignee,
                    created_by=actor.name,
                    created_at=now,
                    updated_at=now,
                )
                .returning(CASES.c.id)
            ).scalar_one()
            audit.record(conn, actor, "case.create", "case", case_id, title=title, assignee=assignee)
            self._attach(conn, actor, case_id, ids)
        return self.case(case_id)

    def add_alerts(self, actor: Actor, case_id: int, alert_ids: Sequence[str]) -> CaseDetail:
        actor.require("analyst")
        ids = _unique_ids(alert_ids)
        with self.engine.begin() as conn:
            self._open_case(conn, case_id)
            self._attach(conn, actor, case_id, ids)
            self._touch(conn, case_id)
        return self.case(case_id)

    def assign(self, actor: Actor, case_id: int, assignee: str | None) -> CaseDetail:
        """Give the case to a user (or to nobody with None)."""
        actor.require("analyst")
        with self.engine.begin() as conn:
            case = self._open_case(conn, case_id)
            if assignee is not None:
                self._check_user(conn, assignee)
            conn.execute(
                update(CASES).where(CASES.c.id == case_id).values(assignee=assignee, updated_at=utc_now())
            )
            audit.record(conn, actor, "case.assign", "case", case_id, old=case.assignee, new=assignee)
        return self.case(case_id)

    def comment(self, actor: Actor, case_id: int, body: str) -> Comment:
        actor.require("analyst")
        body = _text(body, "comment")
        with self.engine.begin() as conn:
            self._case(conn, case_id)  # closed cases take comments too: notes after the fact
            row = conn.execute(
                insert(COMMENTS)
                .values(case_id=case_id, author=actor.name, body=body, created_at=utc_now())
                .returning(*COMMENTS.c)
            ).one()
            self._touch(conn, case_id)
            audit.record(conn, actor, "case.comment", "case", case_id, comment_id=row.id)
        return Comment.model_validate(row._asdict())

    def close_case(self, actor: Actor, case_id: int, disposition: str, reason: str) -> CaseDetail:
        """Close the case and every alert in it with the same disposition and reason."""
        actor.require("analyst")
        _check_disposition(disposition)
        reason = _text(reason, "reason")
        with self.engine.begin() as conn:
            self._open_case(conn, case_id)
            now = utc_now()
            conn.execute(
                update(CASES)
                .where(CASES.c.id == case_id)
                .values(
                    status="closed",
                    disposition=disposition,
                    reason=reason,
                    closed_at=now,
                    closed_by=actor.name,
                    updated_at=now,
                )
            )
            ids = list(conn.execute(select(ALERTS.c.id).where(ALERTS.c.case_id == case_id)).scalars())
            self._set_alerts(conn, ids, status="closed", disposition=disposition, reason=reason)
            audit.record(
                conn, actor, "case.close", "case", case_id, disposition=disposition, reason=reason, alerts=ids
            )
        return self.case(case_id)

    def case(self, case_id: int) -> CaseDetail:
        with self.engine.connect() as conn:
            case = self._case(conn, case_id)
            ids = conn.execute(
                select(ALERTS.c.id).where(ALERTS.c.case_id == case_id).order_by(ALERTS.c.detected_at)
            ).scalars()
            comments = conn.execute(
                select(COMMENTS).where(COMMENTS.c.case_id == case_id).order_by(COMMENTS.c.id)
            )
            return CaseDetail(
                **case.model_dump(),
                alert_ids=list(ids),
                comments=[Comment.model_validate(r._asdict()) for r in comments],
            )

    def cases(
        self, status: str | None = None, assignee: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Case]:
        """Cases, most recently changed first."""
        query = (
            _case_query().order_by(CASES.c.updated_at.desc(), CASES.c.id.desc()).limit(limit).offset(offset)
        )
        if status is not None:
            query = query.where(CASES.c.status == status)
        if assignee is not None:
            query = query.where(CASES.c.assignee == assignee)
        with self.engine.connect() as conn:
            return [Case.model_validate(r._asdict()) for r in conn.execute(query)]

    # -- inside a transaction --------------------------------------------------------------

    def _alert(self, conn: Connection, alert_id: str, lock: bool = False) -> AlertState:
        query = select(
            ALERTS.c.id,
            ALERTS.c.status,
            ALERTS.c.case_id,
            ALERTS.c.disposition,
            ALERTS.c.reason,
            ALERTS.c.updated_at,
        ).where(ALERTS.c.id == alert_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(f"alert {alert_id}: no such alert")
        return AlertState.model_validate(row._asdict())

    def _case(self, conn: Connection, case_id: int, lock: bool = False) -> Case:
        query = _case_query().where(CASES.c.id == case_id)
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"case {case_id}: no such case")
        if lock:  # row lock on PostgreSQL (SQLite's write transaction is already exclusive)
            conn.execute(select(CASES.c.id).where(CASES.c.id == case_id).with_for_update())
        return Case.model_validate(row._asdict())

    def _open_case(self, conn: Connection, case_id: int) -> Case:
        case = self._case(conn, case_id, lock=True)
        if case.status != "open":
            raise ConflictError(f"case {case_id} is closed ({case.disposition}): it cannot change")
        return case

    def _attach(self, conn: Connection, actor: Actor, case_id: int, ids: list[str]) -> None:
        for alert_id in ids:
            state = self._alert(conn, alert_id, lock=True)
            if state.status == "closed":
                raise ConflictError(f"alert {alert_id} is closed: it cannot join a case")
            if state.case_id is not None and state.case_id != case_id:
                raise ConflictError(f"alert {alert_id} is already in case {state.case_id}")
        self._set_alerts(conn, ids, status="in_case", case_id=case_id)
        audit.record(conn, actor, "case.add_alerts", "case", case_id, alerts=ids)

    @staticmethod
    def _set_alerts(conn: Connection, ids: list[str], **values: object) -> None:
        if ids:
            conn.execute(update(ALERTS).where(ALERTS.c.id.in_(ids)).values(**values, updated_at=utc_now()))

    @staticmethod
    def _touch(conn: Connection, case_id: int) -> None:
        conn.execute(update(CASES).where(CASES.c.id == case_id).values(updated_at=utc_now()))

    @staticmethod
    def _check_user(conn: Connection, name: str) -> None:
        if conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first() is None:
            raise NotFoundError(f"user '{name}': no such user")


def _case_query() -> Select[Any]:
    count = select(func.count()).select_from(ALERTS).where(ALERTS.c.case_id == CASES.c.id).scalar_subquery()
    return select(*CASES.c, count.label("alert_count"))


def _check_disposition(disposition: str) -> None:
    if disposition not in DISPOSITIONS:
        raise InputError(f"disposition '{disposition}': expected one of {', '.join(DISPOSITIONS)}")


def _text(value: str, what: str, most: int = MAX_TEXT) -> str:
    value = value.strip()
    if not value or len(value) > most:
        raise InputError(f"{what}: expected 1–{most:,} characters, got {len(value):,}")
    return value


def _unique_ids(alert_ids: Sequence[str]) -> list[str]:
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        raise InputError("alert_ids: expected at least one alert id")
    return ids
