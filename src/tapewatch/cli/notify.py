"""`tapewatch notify …`: run the notifier, send a test message, manage routing rules.

Import-light: the CLI imports this module at start-up, so Apprise, SQLAlchemy
and the notifier are imported inside the commands. Rules are changed as the
`system` actor (whoever can run commands on the server owns the database
anyway) and audited like changes made through the API. Destinations are printed
masked only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tapewatch.cli.options import ConfigOption, DbOption, settings_and_engine
from tapewatch.cli.terminal import err
from tapewatch.extras import require

if TYPE_CHECKING:
    from datetime import datetime


def register(app: typer.Typer, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add `notify run|test` and `notify rules add|list|remove` to the CLI, each wrapped by `wrap`
    (the CLI's `user_errors`, which turns a user error into one line and exit code 2)."""
    notify_app = typer.Typer(help="Notifications: follow new alerts, send a test, manage routing rules.")
    notify_app.command("run")(wrap(notify_run))
    notify_app.command("test")(wrap(notify_test))
    notify_app.command("status")(wrap(notify_status))
    rules_app = typer.Typer(
        help="Routing rules: which alerts go to which destinations.", no_args_is_help=True
    )
    rules_app.command("add")(wrap(rules_add))
    rules_app.command("list")(wrap(rules_list))
    rules_app.command("remove")(wrap(rules_remove))
    notify_app.add_typer(rules_app, name="rules")
    app.add_typer(notify_app, name="notify", no_args_is_help=True)


def notify_run(
    db: DbOption = None,
    config: ConfigOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="First start only: also notify alerts stored since this ISO time (default: now)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Notify what is new, then exit (for cron).")] = False,
) -> None:
    """Follow the store and notify new alerts through the rules, until Ctrl-C or SIGTERM."""
    require("service", "apprise", command="notify run")
    import logging
    import signal
    import threading

    from tapewatch.notify.runner import NotifyRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, engine = settings_and_engine(db, config)
    try:
        runner = NotifyRunner(engine, settings.notify, since=_parse_time("--since", since))
        if once:
            runner.poll()
        else:
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            err.print(
                f"notify: following new alerts from {runner.watermark:%Y-%m-%d %H:%M:%S} UTC", highlight=False
            )
            runner.run(stop)
    finally:
        engine.dispose()
    err.print(runner.report.summary(), highlight=False)


def notify_status(
    since: Annotated[
        str | None, typer.Option(help="Count deliveries logged since this ISO time (default: the last 24 h).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Deliveries by status, the failed ones and those a stopped notifier left claimed (exit 1 if any)."""
    from datetime import timedelta

    from tapewatch.notify import deliveries
    from tapewatch.notify.router import claim_expiry_s
    from tapewatch.store.models import utc_now

    settings, engine = settings_and_engine(db, config)
    start = _parse_time("--since", since) or utc_now() - timedelta(days=1)
    expiry = claim_expiry_s(settings.notify)
    try:
        counts = {
            status: deliveries.list_deliveries(engine, status=status, since=start, limit=1).total
            for status in deliveries.STATUSES
        }
        failed = deliveries.list_deliveries(
            engine, status="failed", since=start, limit=deliveries.PAGE_MAX
        ).items
        stuck = deliveries.abandoned(engine, timedelta(seconds=expiry))
    finally:
        engine.dispose()
    shown = ", ".join(f"{n} {status}" for status, n in counts.items())
    err.print(f"deliveries since {start:%Y-%m-%d %H:%M:%S} UTC: {shown}", markup=False, highlight=False)
    for row in failed:
        err.print(
            f"failed: delivery {row.id}, alert {row.alert_id} ({row.typology} {row.venue}:{row.symbol}) "
            f"through rule '{row.rule}' to {row.destination} after {row.attempts} attempt(s): {row.error}",
            markup=False,
            highlight=False,
        )
    for row in stuck:
        err.print(
            f"stuck: delivery {row.id}, alert {row.alert_id} to {row.destination}, claimed at "
            f"{row.created_at:%Y-%m-%d %H:%M:%S} UTC by a notifier that stopped; a running "
            "`tapewatch notify run` (or process with --notify) sends it again",
            markup=False,
            highlight=False,
        )
    if failed or stuck:
        raise typer.Exit(1)


def notify_test(
    destination: Annotated[
        str, typer.Option("--destination", help="An Apprise URL or env:NAME (the URL in that variable).")
    ],
    config: ConfigOption = None,
) -> None:
    """Send a test message to one destination, with the configured retries; exit 1 if it fails."""
    require("service", "apprise", command="notify test")
    from tapewatch.config import load_settings
    from tapewatch.notify import destinations
    from tapewatch.notify.message import trial_message
    from tapewatch.notify.router import send

    destination = destinations.check(destination)
    settings = load_settings(config)
    outcome = send(destination, trial_message(), settings.notify)
    shown = destinations.mask(destination)
    if not outcome.ok:
        err.print(
            f"test to {shown} failed after {outcome.attempts} attempt(s): {outcome.error}", markup=False
        )
        raise typer.Exit(1)
    err.print(f"test sent to {shown} ({outcome.attempts} attempt(s))", markup=False, highlight=False)


def rules_add(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. 'pumps to discord'.")],
    to: Annotated[
        list[str], typer.Option("--to", help="Destination: an Apprise URL or env:NAME; repeat for several.")
    ],
    typology: Annotated[
        list[str] | None, typer.Option("--typology", help="Only this typology; repeat for several.")
    ] = None,
    min_severity: Annotated[str, typer.Option(help="low, medium, high or critical.")] = "low",
    venue: Annotated[list[str] | None, typer.Option("--venue", help="Only this venue; repeat.")] = None,
    symbol: Annotated[list[str] | None, typer.Option("--symbol", help="A watchlist symbol; repeat.")] = None,
    cooldown: Annotated[
        float, typer.Option(help="Seconds between messages for one venue, symbol and typology.")
    ] = 900.0,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a routing rule: which alerts go to which destinations."""
    require("service", "apprise", command="notify rules add")  # it checks each destination with Apprise
    from tapewatch.notify.rules import RuleFields, create_rule
    from tapewatch.service.actors import SYSTEM

    fields = RuleFields(
        enabled=not disabled,
        typologies=typology or [],
        min_severity=min_severity,
        venues=venue or [],
        symbols=symbol or [],
        destinations=to,
        cooldown_s=cooldown,
    )
    _, engine = settings_and_engine(db, config)
    try:
        rule = create_rule(engine, SYSTEM, name, fields)
    finally:
        engine.dispose()
    err.print(
        f"rule {rule.id} '{rule.name}' added: {', '.join(rule.destinations)}", markup=False, highlight=False
    )


def rules_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List routing rules (destinations masked)."""
    from tapewatch.cli.summary import wide_console
    from tapewatch.notify.rules import list_rules

    _, engine = settings_and_engine(db, config)
    try:
        rules = list_rules(engine)
    finally:
        engine.dispose()
    table = Table(
        "id", "name", "on", "typologies", "min severity", "venues", "symbols", "destinations", "cooldown"
    )
    for rule in rules:
        table.add_row(
            str(rule.id),
            rule.name,
            "yes" if rule.enabled else "no",
            ", ".join(rule.typologies) or "any",
            rule.min_severity,
            ", ".join(rule.venues) or "any",
            ", ".join(rule.symbols) or "any",
            "\n".join(rule.destinations),
            f"{rule.cooldown_s:g}s",
        )
    wide_console().print(table)


def rules_remove(
    rule: Annotated[str, typer.Argument(help="The rule's name or id.")],
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete its deliveries from the log (else refused if any).")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a routing rule (with --purge, also its delivery history)."""
    from tapewatch.notify.rules import delete_rule, find_rule
    from tapewatch.service.actors import SYSTEM

    _, engine = settings_and_engine(db, config)
    try:
        removed = delete_rule(engine, SYSTEM, find_rule(engine, rule).id, purge=purge)
    finally:
        engine.dispose()
    err.print(f"rule {removed.id} '{removed.name}' removed", markup=False, highlight=False)


def _parse_time(option: str, value: str | None) -> datetime | None:
    from datetime import UTC, datetime

    from tapewatch.errors import InputError

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} '{value}': expected an ISO time such as 2024-03-01T12:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
