"""/cases: list and read cases (viewer); open, extend, assign, comment on and close them (analyst)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import (
    AlertId,
    CaseStatus,
    Closing,
    DbId,
    Limit,
    Name,
    Offset,
    Page,
    Prose,
    Title,
    page_of,
)
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Analyst, Viewer
from tapewatch.service.workflow import Case, CaseDetail, Comment

router = APIRouter(prefix=f"{API_PREFIX}/cases", tags=["cases"], responses=error_responses(401, 422, 503))
CaseId = Annotated[DbId, Path(description="the case's id")]
AlertIds = Annotated[list[AlertId], Field(min_length=1, max_length=1000)]
CHANGES = error_responses(403, 404, 409, 413)


class NewCase(BaseModel):
    """A case to open: a title, the alerts it starts with, optionally who works it."""

    title: Title
    alert_ids: AlertIds
    assignee: Name | None = None


class MoreAlerts(BaseModel):
    """Alerts to add to an open case."""

    alert_ids: AlertIds


class Assignment(BaseModel):
    """Who works the case now (null: nobody)."""

    assignee: Name | None = Field(description="a user's name, or null to unassign")


class NewComment(BaseModel):
    """A note for the case's record."""

    body: Prose


@router.get("", response_model=Page[Case], summary="List cases, most recently changed first")
def list_cases(
    ctx: Context,
    actor: Viewer,
    status: Annotated[CaseStatus | None, Query(description="open or closed")] = None,
    assignee: Annotated[Name | None, Query(description="assigned to this user")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[Case]:
    """Cases filtered by status and assignee, most recently changed first."""
    return page_of(ctx.workflow.cases(status, assignee, limit=limit + 1, offset=offset), limit, offset)


@router.post(
    "", response_model=CaseDetail, status_code=201, responses=CHANGES, summary="Open a case on alerts"
)
def create_case(ctx: Context, actor: Analyst, body: NewCase) -> CaseDetail:
    """A new open case holding these alerts (none closed, none already in another case)."""
    return ctx.workflow.create_case(actor, body.title, body.alert_ids, body.assignee)


@router.get("/{case_id}", response_model=CaseDetail, responses=error_responses(404), summary="One case")
def get_case(ctx: Context, actor: Viewer, case_id: CaseId) -> CaseDetail:
    """The case with its alert ids and comments."""
    return ctx.workflow.case(case_id)


@router.post("/{case_id}/alerts", response_model=CaseDetail, responses=CHANGES, summary="Add alerts")
def add_alerts(ctx: Context, actor: Analyst, case_id: CaseId, body: MoreAlerts) -> CaseDetail:
    """Add alerts to an open case (none closed, none in another case)."""
    return ctx.workflow.add_alerts(actor, case_id, body.alert_ids)


@router.post("/{case_id}/assign", response_model=CaseDetail, responses=CHANGES, summary="Assign or unassign")
def assign(ctx: Context, actor: Analyst, case_id: CaseId, body: Assignment) -> CaseDetail:
    """Give the open case to a user, or to nobody."""
    return ctx.workflow.assign(actor, case_id, body.assignee)


@router.post(
    "/{case_id}/comments", response_model=Comment, status_code=201, responses=CHANGES, summary="Comment"
)
def comment(ctx: Context, actor: Analyst, case_id: CaseId, body: NewComment) -> Comment:
    """A note on the case (closed cases take notes too); comments are never edited."""
    return ctx.workflow.comment(actor, case_id, body.body)


@router.post("/{case_id}/close", response_model=CaseDetail, responses=CHANGES, summary="Close a case")
def close_case(ctx: Context, actor: Analyst, case_id: CaseId, body: Closing) -> CaseDetail:
    """Close the case and every alert in it with the same disposition and reason."""
    return ctx.workflow.close_case(actor, case_id, body.disposition, body.reason)
