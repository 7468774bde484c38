"""`tapewatch notify …` through the same registration the CLI uses, on a real store and local endpoints."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from tapewatch.store.alert_store import open_store
from tapewatch.store.models import utc_now
from unit.store.test_store import make_alert

SECRET = "hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"


runner = CliRunner()


def test_rules_are_added_listed_masked_and_removed(cli, tmp_path):
    db = ["--db", str(tmp_path / "t.db")]
    added = runner.invoke(
        cli,
        [
            "notify",
            "rules",
            "add",
            "pumps",
            "--to",
            f"discord://417429632418316298/{SECRET}",
            "--to",
            "env:TW_MAIL",
            "--typology",
            "pump_and_dump",
            "--min-severity",
            "high",
            "--symbol",
            "PUMP/USDT",
            *db,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "rule 1 'pumps' added: discord://4...8/h...H, env:TW_MAIL" in added.output
    listed = runner.invoke(cli, ["notify", "rules", "list", *db])
    assert "pumps" in listed.output and "PUMP/USDT" in listed.output and SECRET not in listed.output
    assert runner.invoke(cli, ["notify", "rules", "remove", "pumps", *db]).exit_code == 0
    assert "pumps" not in runner.invoke(cli, ["notify", "rules", "list", *db]).output


def test_mistakes_are_one_line_errors(cli, tmp_path):
    db = ["--db", str(tmp_path / "t.db")]
    bad = runner.invoke(cli, ["notify", "rules", "add", "x", "--to", "bogus://h", *db])
    assert bad.exit_code == 2 and "destination 'bogus://…': Apprise knows no service 'bogus'" in bad.output
    missing = runner.invoke(cli, ["notify", "rules", "remove", "nope", *db])
    assert missing.exit_code == 2 and "rule 'nope': no such rule" in missing.output
    when = runner.invoke(cli, ["notify", "run", "--once", "--since", "yesterday", *db])
    assert when.exit_code == 2 and "--since 'yesterday': expected an ISO time" in when.output


def test_notify_test_sends_one_message_and_fails_with_exit_1_and_no_secret(cli, webhook, tmp_path):
    config = tmp_path / "tapewatch.toml"
    config.write_text("[notify]\nretries = 3\nretry_initial_s = 0.01\nretry_max_s = 0.01\n")
    fast = ["--config", str(config)]
    sent = runner.invoke(
        cli, ["notify", "test", "--destination", f"json://127.0.0.1:{webhook.port}/hook", *fast]
    )
    assert sent.exit_code == 0 and "test sent to" in sent.output
    assert webhook.requests[0].json()["title"] == "Tapewatch test notification"
    webhook.fail_first = 100
    token = "Tok3nS3cretAbcdef123456"
    failed = runner.invoke(
        cli, ["notify", "test", "--destination", f"json://127.0.0.1:{webhook.port}/{token}", *fast]
    )
    assert (
        failed.exit_code == 1 and "failed after 4 attempt(s)" in failed.output and token not in failed.output
    )


def test_notify_run_once_delivers_what_is_new(cli, tmp_path, webhook):
    db = ["--db", str(tmp_path / "t.db")]
    runner.invoke(
        cli, ["notify", "rules", "add", "all", "--to", f"json://127.0.0.1:{webhook.port}/hook", *db]
    )
    with open_store(tmp_path / "t.db") as store:
        store.save([make_alert(0)])
    since = (utc_now() - timedelta(minutes=5)).isoformat()
    ran = runner.invoke(cli, ["notify", "run", "--once", "--since", since, *db])
    assert ran.exit_code == 0, ran.output
    assert "1 sent" in ran.output and len(webhook.requests) == 1
    again = runner.invoke(cli, ["notify", "run", "--once", *db])  # resumes from the log: nothing twice
    assert again.exit_code == 0 and "nothing sent" in again.output and len(webhook.requests) == 1
