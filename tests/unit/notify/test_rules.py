"""Routing rules: validated when written, admin only, audited, destinations masked everywhere but the table."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tapewatch.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from tapewatch.notify.rules import (
    RuleChanges,
    RuleFields,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    update_rule,
)
from tapewatch.service.actors import SYSTEM, Actor
from tapewatch.service.audit import history
from tapewatch.store.models import NotificationRuleRow
from unit.store.test_store import make_alert

from .helpers import add_rule

SECRET = "hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"
DISCORD = f"discord://417429632418316298/{SECRET}"
MAIL = "mailto://alerts:Pa55w0rdXYZ@mail.example.com?smtp=smtp.example.com&from=tw@example.com&to=desk@example.com"


def test_a_rule_is_stored_with_its_real_destinations_and_listed_masked(engine):
    rule = add_rule(
        engine, "pumps", DISCORD, "env:TW_SLACK", typologies=["pump_and_dump"], min_severity="high"
    )
    assert rule.destinations == ["discord://4...8/h...H", "env:TW_SLACK"]
    assert [r.model_dump() for r in list_rules(engine)] == [rule.model_dump()]
    with engine.connect() as conn:
        stored = conn.execute(select(NotificationRuleRow.__table__.c.destinations)).scalar_one()
    assert stored == [DISCORD, "env:TW_SLACK"]  # the notifier needs the real URL


def test_every_change_is_audited_without_the_secrets(engine):
    rule = add_rule(engine, "pumps", DISCORD)
    update_rule(engine, SYSTEM, rule.id, RuleChanges(destinations=[MAIL], min_severity="medium"))
    delete_rule(engine, SYSTEM, rule.id)
    entries = history(engine, "rule", rule.id)
    assert [e.action for e in entries] == ["rule.delete", "rule.update", "rule.create"]
    assert entries[1].details["min_severity"] == "medium"
    assert entries[1].details["destinations"] == ["mailto://alerts:****@mail.example.com/desk%40example.com"]
    text = repr([e.details for e in entries])
    assert SECRET not in text and "Pa55w0rdXYZ" not in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_severity": "urgent"}, "min_severity 'urgent': expected one of low, medium, high, critical"),
        ({"typologies": ["pump"]}, "typology 'pump': expected one of pump_and_dump, "),
        ({"cooldown_s": -1}, "cooldown_s -1.0: expected a number of seconds ≥ 0"),
        ({"cooldown_s": float("nan")}, "cooldown_s nan"),
        ({"destinations": []}, "destinations: none given"),
        ({"destinations": ["bogus://x"]}, "destination 'bogus://…': Apprise knows no service 'bogus'"),
        ({"symbols": ["X" * 65]}, "symbols entry 'XXXX"),
    ],
)
def test_bad_settings_are_refused_naming_the_rule_and_the_field(engine, fields, message):
    fields.setdefault("destinations", ["json://hooks.example.com/x"])
    with pytest.raises(InputError) as caught:
        create_rule(engine, SYSTEM, "bad", RuleFields(**fields))
    assert str(caught.value).startswith("rule 'bad': ") and message in str(caught.value)
    assert list_rules(engine) == []


def test_names_are_unique_and_well_formed(engine):
    add_rule(engine, "pumps to discord", DISCORD)
    with pytest.raises(ConflictError, match="rule 'pumps to discord' already exists"):
        add_rule(engine, "pumps to discord", "json://hooks.example.com/x")
    for bad in (" ", "pumps/dumps", "x" * 65):
        with pytest.raises(InputError, match="expected 1–64 letters, digits, spaces or _.@-"):
            add_rule(engine, bad, DISCORD)


def test_two_destinations_that_look_alike_once_masked_are_refused(engine):
    with pytest.raises(InputError, match="both show as"):
        add_rule(
            engine,
            "twins",
            "json://hooks.example.com/hook/a1b2c3d4z",
            "json://hooks.example.com/hook/a9b9c9d9z",
        )


def test_only_an_admin_may_change_rules(engine):
    analyst = Actor("ana", "analyst")
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        create_rule(engine, analyst, "pumps", RuleFields(destinations=[DISCORD]))
    rule = add_rule(engine, "pumps", DISCORD)
    with pytest.raises(PermissionDeniedError):
        update_rule(engine, analyst, rule.id, RuleChanges(enabled=False))
    with pytest.raises(PermissionDeniedError):
        delete_rule(engine, analyst, rule.id)
    assert get_rule(engine, rule.id).enabled


def test_an_update_changes_only_what_is_given_and_a_masked_destination_keeps_its_url(engine):
    rule = add_rule(engine, "pumps", DISCORD, venues=["binance"], cooldown_s=600)
    changed = update_rule(
        engine,
        SYSTEM,
        rule.id,
        RuleChanges(name="big pumps", destinations=[*rule.destinations, "env:TW_MAIL"]),
    )
    assert changed.name == "big pumps" and changed.venues == ["binance"] and changed.cooldown_s == 600
    assert changed.updated_at > rule.updated_at
    with engine.connect() as conn:
        stored = conn.execute(select(NotificationRuleRow.__table__.c.destinations)).scalar_one()
    assert stored == [DISCORD, "env:TW_MAIL"]


def test_updating_or_deleting_a_missing_rule_is_not_found(engine):
    with pytest.raises(NotFoundError, match="rule 42: no such rule"):
        update_rule(engine, SYSTEM, 42, RuleChanges(enabled=False))
    with pytest.raises(NotFoundError):
        delete_rule(engine, SYSTEM, 42)


def test_a_rule_with_deliveries_is_deleted_only_with_purge(engine, store, webhook, settings):
    from tapewatch.notify.router import Notifier

    rule = add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    alert = make_alert(0)
    store.save([alert])
    assert [d.status for d in Notifier(engine, settings).notify([alert])] == ["sent"]
    with pytest.raises(ConflictError, match="has 1 deliveries in the log: disable it instead"):
        delete_rule(engine, SYSTEM, rule.id)
    delete_rule(engine, SYSTEM, rule.id, purge=True)
    assert list_rules(engine) == []
    assert history(engine, "rule", rule.id)[0].details["deliveries_dropped"] == 1
