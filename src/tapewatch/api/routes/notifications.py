"""REST endpoints for notification rules and the delivery log, mounted by the API under `/api/v1`.

`make_router(get_engine, get_actor, settings, get_admin)` takes the API's own
dependencies (the database engine, the authenticated actor and, optionally, the
admin), so this module depends on no particular app; the API passes its role
declarations, so every route here declares its role the way the API's own do. Anyone signed in may read rules and deliveries (destinations
are always masked); changing rules and sending tests needs the admin role,
checked by the same service functions the command line uses. User errors come
back as 422 (bad input, as everywhere in the API), 403, 404 and 409, each with the one-line
message as `detail`.

    GET    /notifications/rules                 list rules
    POST   /notifications/rules                 create a rule (201)
    GET    /notifications/rules/{id}            one rule
    PATCH  /notifications/rules/{id}            change the fields given
    DELETE /notifications/rules/{id}?purge=     delete (204); with deliveries only with purge=true
    POST   /notifications/rules/{id}/test       send a test message to each destination, no retries
    GET    /notifications/deliveries            the log: rule_id, alert_id, status, since, until, limit, offset
"""

# No `from __future__ import annotations`: FastAPI must see the dependency types, which are local to
# make_router, at definition time.

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from tapewatch.api.inputs import AlertId, DbId, Name, Offset, UtcTime
from tapewatch.config import NotifySettings
from tapewatch.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError, TapewatchError
from tapewatch.notify import deliveries, destinations, rules
from tapewatch.notify.deliveries import DeliveryPage
from tapewatch.notify.message import trial_message
from tapewatch.notify.router import send
from tapewatch.notify.rules import Rule, RuleChanges, RuleFields
from tapewatch.service.actors import Actor

STATUS_CODES: dict[type[TapewatchError], int] = {
    InputError: 422,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
}


class NewRule(RuleFields):
    """The body of a create: a name and the rule's settings; unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")
    name: str


class RulePatch(RuleChanges):
    """The body of a change: the fields to change; unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


class TrialResult(BaseModel):
    """One destination's answer to a test message."""

    destination: str
    ok: bool
    attempts: int
    error: str | None


@contextmanager
def _http_errors() -> Iterator[None]:
    """A user error as its HTTP status with the one-line message as `detail`."""
    try:
        yield
    except TapewatchError as exc:
        code = next((code for kind, code in STATUS_CODES.items() if isinstance(exc, kind)), 422)
        raise HTTPException(status_code=code, detail=str(exc)) from None


def make_router(
    get_engine: Callable[..., Any],
    get_actor: Callable[..., Any],
    settings: NotifySettings | None = None,
    get_admin: Callable[..., Any] | None = None,
) -> APIRouter:
    """The notifications router, wired to the app's engine and actor dependencies.

    `get_admin` answers an admin or refuses; without it, `get_actor`'s actor is checked here.
    """
    router = APIRouter(prefix="/notifications", tags=["notifications"])
    engine_dep = Annotated[Engine, Depends(get_engine)]
    actor_dep = Annotated[Actor, Depends(get_actor)]
    one_try = (settings or NotifySettings()).model_copy(update={"retries": 0})  # a person is waiting

    def admin(actor: actor_dep) -> Actor:
        """Refuse a non-admin before the body is even read: a viewer gets 403, not a lesson in validation."""
        with _http_errors():
            actor.require("admin")
        return actor

    admin_dep = Annotated[Actor, Depends(get_admin or admin)]

    @router.get("/rules")
    def list_rules(engine: engine_dep, actor: actor_dep) -> list[Rule]:
        with _http_errors():
            return rules.list_rules(engine)

    @router.post("/rules", status_code=201)
    def create_rule(body: NewRule, engine: engine_dep, actor: admin_dep) -> Rule:
        with _http_errors():
            return rules.create_rule(engine, actor, body.name, RuleFields.model_validate(body.model_dump()))

    @router.get("/rules/{rule_id}")
    def get_rule(rule_id: DbId, engine: engine_dep, actor: actor_dep) -> Rule:
        with _http_errors():
            return rules.get_rule(engine, rule_id)

    @router.patch("/rules/{rule_id}")
    def update_rule(rule_id: DbId, body: RulePatch, engine: engine_dep, actor: admin_dep) -> Rule:
        with _http_errors():
            changes = RuleChanges.model_validate(body.model_dump(exclude_unset=True))
            return rules.update_rule(engine, actor, rule_id, changes)

    @router.delete("/rules/{rule_id}", status_code=204)
    def delete_rule(rule_id: DbId, engine: engine_dep, actor: admin_dep, purge: bool = False) -> Response:
        with _http_errors():
            rules.delete_rule(engine, actor, rule_id, purge=purge)
        return Response(status_code=204)

    @router.post("/rules/{rule_id}/test")
    def send_test(rule_id: DbId, engine: engine_dep, actor: admin_dep) -> list[TrialResult]:
        with _http_errors():
            routed = rules.routing_rule(engine, rule_id)
        results = []
        for destination in routed.destinations:
            outcome = send(destination, trial_message(), one_try)
            shown = destinations.mask(destination)
            results.append(
                TrialResult(destination=shown, ok=outcome.ok, attempts=outcome.attempts, error=outcome.error)
            )
        return results

    @router.get("/deliveries")
    def list_deliveries(
        engine: engine_dep,
        actor: actor_dep,
        rule_id: DbId | None = None,
        alert_id: AlertId | None = None,
        status: Name | None = None,
        since: UtcTime | None = None,
        until: UtcTime | None = None,
        limit: Annotated[int, Query(ge=1, le=deliveries.PAGE_MAX)] = 100,
        offset: Offset = 0,
    ) -> DeliveryPage:
        with _http_errors():
            return deliveries.list_deliveries(
                engine,
                rule_id=rule_id,
                alert_id=alert_id,
                status=status,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )

    return router
