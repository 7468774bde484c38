"""Where notifications go: Apprise URLs or `env:NAME`, checked, resolved at delivery time, and masked.

An Apprise URL holds the secret that lets anyone post to the channel (a webhook
token, a bot token, an SMTP password), so outside the rules table it only ever
appears masked: Apprise's own privacy form (passwords hidden, tokens cut to
their first and last character), without the query, and with any other
token-like path part cut the same way. `env:NAME` keeps the secret out of the
database altogether: the URL is read from the environment when a message is sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote

from tapewatch.errors import InputError
from tapewatch.notify import transport

ENV_PREFIX = "env:"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MASKED_MAX = 256
"""The delivery log's column width for a masked destination."""
EXPECTED = "an Apprise URL (e.g. json://host/path, discord://ID/TOKEN, mailto://user:pass@host) or env:NAME"
_PIECES = re.compile(r"[/:@?&=#;,]+")


def is_env(destination: str) -> bool:
    return destination.startswith(ENV_PREFIX)


def check(destination: str) -> str:
    """The destination, trimmed, if it names an environment variable or Apprise can use it.

    An `env:NAME` destination is checked for its form only: the variable is
    read at delivery time, so it need not be set where the rule is written.
    """
    destination = destination.strip()
    if is_env(destination):
        if not ENV_NAME.match(destination[len(ENV_PREFIX) :]):
            raise InputError(
                f"destination '{destination}': expected env:NAME, NAME an environment variable name "
                "(letters, digits and _, not starting with a digit)"
            )
        return destination
    if transport.instantiate(destination) is None:
        raise InputError(
            f"destination {preview(destination)}: {_why_unusable(destination)}; expected {EXPECTED}"
        )
    return destination


def _why_unusable(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return "not a URL"
    if not transport.known_service(scheme):
        return f"Apprise knows no service '{scheme}'"
    return "Apprise cannot parse it (a token, address or host is missing or malformed)"


def preview(destination: str) -> str:
    """A destination safe to print even when it cannot be parsed: only its scheme, quoted."""
    if is_env(destination):
        return f"'{destination}'"
    scheme, sep, _ = destination.partition("://")
    return f"'{scheme}://…'" if sep and len(scheme) <= 32 else "'…'"


def resolve(destination: str, environ: Mapping[str, str] | None = None) -> str:
    """The Apprise URL to send to: the destination itself, or the URL in its environment variable."""
    if not is_env(destination):
        return destination
    name = destination[len(ENV_PREFIX) :]
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise InputError(
            f"destination '{destination}': environment variable {name} is not set (expected an Apprise URL in it)"
        )
    return value


def mask(destination: str) -> str:
    """The destination as it may be shown and logged: the env name, or the URL with its secrets cut."""
    if is_env(destination):
        return destination
    plugin = transport.instantiate(destination)
    if plugin is None:
        return preview(destination).strip("'")
    shown = plugin.url(privacy=True).split("?", 1)[0]
    scheme, _, rest = shown.partition("://")
    host, slash, path = rest.partition("/")
    path = "/".join(_cut(part) if _looks_secret(part) else part for part in path.split("/"))
    return f"{scheme}://{host}{slash}{path}".rstrip("/")[:MASKED_MAX]


def scrub(text: str, *urls: str) -> str:
    """The text with every secret-looking part of the given URLs (and the URLs themselves) replaced."""
    secrets: set[str] = set()
    for url in urls:
        if url and not is_env(url):
            secrets.add(url)
            secrets.update(_secret_parts(url))
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: a token inside a URL
        text = text.replace(secret, "****")
    return text


def _secret_parts(url: str) -> set[str]:
    """Passwords, tokens and keys in a URL: its password and every token-like piece, raw and unquoted."""
    _, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    parts: set[str] = set()
    userinfo, at, _ = netloc.rpartition("@")
    if at and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        parts.update({password, unquote(password)} - {""})
    for piece in _PIECES.split(rest):
        for form in (piece, unquote(piece)):
            if _looks_secret(form):
                parts.add(form)
    return parts


def _looks_secret(piece: str) -> bool:
    """A token rather than a word, host or address: long, or mixing letters and digits."""
    if not piece or "." in piece or "@" in piece or "%40" in piece or "*" in piece:
        return False
    if len(piece) >= 16:
        return True
    return len(piece) >= 6 and any(c.isdigit() for c in piece) and any(c.isalpha() for c in piece)


def _cut(piece: str) -> str:
    return f"{piece[0]}...{piece[-1]}"
