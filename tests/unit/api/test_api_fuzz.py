"""Schemathesis against the real ASGI app with an admin key: whatever the schema allows, no 5xx.

On SQLite and PostgreSQL (where NUL bytes and integer ranges bite), with a few
alerts and a case stored; the operations that could demote the fuzzing admin or
revoke its key get databases of their own, so they cannot starve the others. Valid requests must also match the documented statuses,
content types and response schemas; invalid ones (negative mode) must still be
answered with a 4xx. The example count is small so the run takes well under a minute
(TAPEWATCH_FUZZ_EXAMPLES raises it, on both databases). PostgreSQL gets fewer examples by default:
the handlers and schemas it runs are the SQLite run's, so there it only has to find what the database
itself refuses (NUL bytes, integers beyond 64 bits), boundary values Hypothesis favours from the start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tapewatch.api import create_app
from tapewatch.service.actors import SYSTEM
from tapewatch.service.workflow import Workflow
from tapewatch.store.alert_store import open_store
from unit.store.test_store import BACKENDS, make_alert, postgres_schema

from .harness import add_users, api_settings

EXAMPLES = {
    "sqlite": int(os.environ.get("TAPEWATCH_FUZZ_EXAMPLES", "10")),
    "postgresql": int(os.environ.get("TAPEWATCH_FUZZ_EXAMPLES", "4")),
}
"""Per operation and mode, by database; raise both for a deeper run (e.g. 200) when changing the API."""
SELF_HARM = {("PATCH", "/api/v1/users/{name}"), ("DELETE", "/api/v1/keys/{key_id}")}
"""Operations that may demote the fuzzing admin or revoke its key."""
OUTSIDE = {("POST", "/api/v1/notifications/rules/{rule_id}/test")}
"""Operations that reach outside the app (a test message to a rule's destinations): not fuzzed."""
CHECKS = {
    GenerationMode.POSITIVE: [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ],
    GenerationMode.NEGATIVE: [not_a_server_error],
}


class Databases:
    """Fresh seeded databases of one kind: users, three alerts and a case in each.

    SQLite copies one seeded file (far quicker than seeding again); PostgreSQL seeds a new
    schema each time, dropped when the test ends.
    """

    def __init__(self, kind: str, folder: Path, stack: contextlib.ExitStack) -> None:
        self.kind, self.folder, self.stack = kind, folder, stack
        self.template: tuple[Path, dict[str, str]] | None = None

    def new(self) -> tuple[str, dict[str, str]]:
        """A database URL and the admin's headers for it."""
        if self.kind == "postgresql":
            url = self.stack.enter_context(postgres_schema())
            return url, seed(url)
        if self.template is None:
            path = self.folder / "template.db"
            self.template = path, seed(f"sqlite:///{path}")
        copy = self.folder / f"{uuid.uuid4().hex}.db"
        shutil.copy(self.template[0], copy)
        return f"sqlite:///{copy}", self.template[1]

    def app(self) -> tuple[FastAPI, dict[str, str]]:
        """The app on a new database, and the admin's headers.

        Schemathesis keeps each app's lifespan running until the process ends, so the live feed
        is told to poll rarely: idle pollers would otherwise compete for the CPU.
        """
        url, admin = self.new()
        return create_app(api_settings(feed_poll_s=3600), db=url, lake=str(self.folder / "lake")), admin


def seed(url: str) -> dict[str, str]:
    with open_store(url) as store:
        keys = add_users(store)
        alerts = [make_alert(minute) for minute in range(3)]
        store.save(alerts)
        Workflow(store.engine).create_case(SYSTEM, "seed", [alerts[0].id])
    return {"Authorization": f"Bearer {keys['admin']}"}


@pytest.mark.parametrize("kind", BACKENDS)
def test_no_operation_answers_a_server_error(kind: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        databases = Databases(kind, tmp_path, stack)
        app, admin = databases.app()
        operations = [result.ok() for result in load(app).get_all_operations()]
        assert len(operations) >= 25
        for operation in operations:
            if (operation.method.upper(), operation.path) in OUTSIDE:
                continue
            for mode, checks in CHECKS.items():
                if mode == GenerationMode.NEGATIVE and not takes_input(operation):
                    continue  # nothing to get wrong
                if (operation.method.upper(), operation.path) in SELF_HARM:
                    own, own_admin = databases.app()
                    own_operation = load(own)[operation.path][operation.method.upper()]
                    fuzz(own_operation, mode, checks, own_admin, EXAMPLES[kind])
                else:
                    fuzz(operation, mode, checks, admin, EXAMPLES[kind])


def takes_input(operation: APIOperation) -> bool:
    return bool(operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"))


def fuzz(
    operation: APIOperation, mode: GenerationMode, checks: list, headers: dict[str, str], examples: int
) -> None:
    """Run `examples` generated requests of one operation and check each response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


def load(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
