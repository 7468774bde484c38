"""`users password` and `users remove`: what the server's operator does when a credential leaks.

The commands are exercised on a Typer app of their own, wrapped as `tapewatch`'s
are (one-line errors), so they are tested whatever the main app registers.
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from tapewatch.cli import users
from tapewatch.cli.app import user_errors
from tapewatch.service import auth, sessions
from tapewatch.service.actors import SYSTEM
from tapewatch.store.alert_store import open_engine

runner = CliRunner()
commands = typer.Typer()
commands.command("password")(user_errors(users.users_password))
commands.command("remove")(user_errors(users.users_remove))


def test_a_new_password_ends_the_sessions_and_removal_ends_everything(tmp_path) -> None:
    db = ["--db", str(tmp_path / "t.db")]
    engine = open_engine(tmp_path / "t.db")
    auth.create_user(engine, SYSTEM, "ana", "analyst", password="first-password")
    actor = auth.authenticate_password(engine, "ana", "first-password")
    assert actor is not None
    token = sessions.open_session(engine, actor, 3600)
    _, secret = auth.create_api_key(engine, SYSTEM, "ana")

    changed = runner.invoke(commands, ["password", "ana", *db], input="second-password\nsecond-password\n")
    assert changed.exit_code == 0 and "sessions have ended" in changed.output
    assert sessions.session_actor(engine, token) is None
    assert auth.authenticate_password(engine, "ana", "second-password") == actor
    assert auth.authenticate_key(engine, secret) is not None  # keys are not the password

    removed = runner.invoke(commands, ["remove", "ana", *db])
    assert removed.exit_code == 0 and "user ana removed" in removed.output
    assert auth.authenticate_key(engine, secret) is None
    assert auth.authenticate_password(engine, "ana", "second-password") is None

    failed = runner.invoke(commands, ["remove", "zed", *db])
    assert failed.exit_code == 2 and "user 'zed': no such user" in failed.output
    assert "Traceback" not in failed.output
    engine.dispose()
