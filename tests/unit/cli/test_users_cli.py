"""`tapewatch users …` / `tapewatch keys …`: bootstrap a user and a key that then authenticates."""

from __future__ import annotations

from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.service.actors import Actor
from tapewatch.service.auth import authenticate_key
from tapewatch.store.alert_store import open_engine

runner = CliRunner()


def test_add_a_user_make_a_key_use_it_then_revoke_it(tmp_path):
    db = ["--db", str(tmp_path / "t.db")]
    added = runner.invoke(app, ["users", "add", "ana", "--role", "analyst", *db])
    assert added.exit_code == 0 and "user ana added (analyst)" in added.output
    made = runner.invoke(app, ["keys", "create", "--user", "ana", "--name", "laptop", *db])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    engine = open_engine(tmp_path / "t.db")
    assert authenticate_key(engine, secret) == Actor("ana", "analyst")
    listed = runner.invoke(app, ["keys", "list", *db])
    assert "laptop" in listed.output and secret not in listed.output
    assert runner.invoke(app, ["keys", "revoke", "1", *db]).exit_code == 0
    assert authenticate_key(engine, secret) is None
    engine.dispose()


def test_mistakes_are_one_line_errors(tmp_path):
    db = ["--db", str(tmp_path / "t.db")]
    runner.invoke(app, ["users", "add", "ana", *db])
    for args, message in (
        (["users", "add", "ana", *db], "user 'ana' already exists"),
        (
            ["users", "add", "bob", "--role", "boss", *db],
            "role 'boss': expected one of viewer, analyst, admin",
        ),
        (["keys", "create", "--user", "zed", *db], "user 'zed': no such user"),
        (["keys", "revoke", "9", *db], "API key 9: no such key"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
