"""Destinations: what Apprise accepts, `env:NAME`, and masking secrets wherever a destination is shown."""

from __future__ import annotations

import pytest

from tapewatch.errors import InputError
from tapewatch.notify import destinations

DISCORD = "discord://417429632418316298/hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
TELEGRAM = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567"
MAIL = "mailto://alerts:Pa55w0rdXYZ@mail.example.com?smtp=smtp.example.com&from=tw@example.com&to=desk@example.com"
WEBHOOK = "jsons://hooks.example.com/incoming/9f8e7d6c5b4a39281706?token=abcdef0123456789"


@pytest.mark.parametrize(
    ("url", "secrets", "shown"),
    [
        (DISCORD, ["hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"], "discord://4...8/h...H"),
        (SLACK, ["TIiajkdnlazkcOXrIdevi7"], "slack://T...2/A...D/T...7"),
        (TELEGRAM, ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"], "tgram://"),
        (MAIL, ["Pa55w0rdXYZ"], "mailto://alerts:****@mail.example.com"),
        (WEBHOOK, ["9f8e7d6c5b4a39281706", "abcdef0123456789"], "jsons://hooks.example.com/incoming/9...6"),
    ],
)
def test_a_masked_destination_keeps_the_service_and_host_and_hides_every_secret(url, secrets, shown):
    masked = destinations.mask(url)
    assert masked.startswith(shown)
    for secret in secrets:
        assert secret not in masked
    assert "?" not in masked  # the query (tokens, options) is dropped


def test_an_env_destination_is_shown_as_it_is_and_resolved_at_delivery(monkeypatch):
    assert destinations.check(" env:TW_DISCORD ") == "env:TW_DISCORD"
    assert destinations.mask("env:TW_DISCORD") == "env:TW_DISCORD"
    monkeypatch.setenv("TW_DISCORD", DISCORD)
    assert destinations.resolve("env:TW_DISCORD") == DISCORD
    monkeypatch.delenv("TW_DISCORD")
    with pytest.raises(InputError, match="environment variable TW_DISCORD is not set"):
        destinations.resolve("env:TW_DISCORD")


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("bogus://host/x", "Apprise knows no service 'bogus'"),
        ("discord://only-an-id", "Apprise cannot parse it"),
        ("hooks.example.com/x", "not a URL"),
        ("env:1ABC", "expected env:NAME"),
        ("env:", "expected env:NAME"),
    ],
)
def test_a_destination_apprise_cannot_use_is_refused_with_the_reason(given, why):
    with pytest.raises(InputError, match=why) as caught:
        destinations.check(given)
    assert "expected" in str(caught.value) and "\n" not in str(caught.value)


def test_a_refused_url_is_named_by_its_scheme_only_so_its_secret_stays_out_of_the_error():
    with pytest.raises(InputError) as caught:
        destinations.check("discord://S3cretT0kenNoId")
    assert "S3cretT0kenNoId" not in str(caught.value)
    assert "'discord://…'" in str(caught.value)


def test_scrub_removes_tokens_and_passwords_from_error_text():
    text = (
        "HTTPSConnectionPool(host='discord.com'): Max retries exceeded with url: "
        "/api/webhooks/417429632418316298/hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH; login alerts:Pa55w0rdXYZ refused"
    )
    scrubbed = destinations.scrub(text, DISCORD, MAIL)
    assert "hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH" not in scrubbed and "Pa55w0rdXYZ" not in scrubbed
    assert "Max retries exceeded" in scrubbed and "****" in scrubbed
