"""The words of a notification: what happened where, how sure, the numbers behind it, and a link.

Written for a phone's lock screen first (the title says typology, market and
severity) and a chat channel second (the body gives the evidence in plain words,
one number a line). Evidence documents differ by detector and nest (`{"orders":
{"now": 150, "baseline": 0.4}}`), so they are flattened generically; a ratio
reads as "×", a share or rise as a percentage.
"""

from __future__ import annotations

from typing import Any

from tapewatch.notify.transport import Message
from tapewatch.records import Alert, to_iso

EVIDENCE_LINES = 8
"""Numbers shown at most: enough to judge, few enough to read on a phone."""
_PERCENT_WORDS = ("share", "rise", "return", "retrace", "drop", "fall")


def compose(alert: Alert, console_url: str = "") -> Message:
    """Title and body for one alert; the link is to the alert in the console when its URL is known."""
    market = f"{alert.venue}:{alert.symbol}"
    title = f"{_words(alert.typology).capitalize()} on {market}: {alert.severity} ({alert.score:.2f})"
    lines = [
        f"{_words(alert.typology).capitalize()} on {market}",
        f"Severity {alert.severity}, score {alert.score:.2f}, by {alert.detector}",
        f"Detected at {to_iso(alert.detected_at)} (activity from {to_iso(alert.start)} to {to_iso(alert.end)})",
    ]
    evidence = evidence_lines(alert.evidence)
    if evidence:
        lines += ["", "Evidence:", *(f"- {line}" for line in evidence)]
    lines.append("")
    if console_url:
        lines.append(f"Open in the console: {console_url.rstrip('/')}/#/alerts/{alert.id}")
    lines.append(f"Alert id: {alert.id}")
    return Message(title=title, body="\n".join(lines), severity=alert.severity)


def trial_message() -> Message:
    """What `notify test` sends: plainly a test, so nobody acts on it."""
    return Message(
        title="Tapewatch test notification",
        body="This is a test from Tapewatch: if you can read it, alerts will reach this destination.",
    )


def evidence_lines(evidence: dict[str, Any], limit: int = EVIDENCE_LINES) -> list[str]:
    """The evidence's values in plain words, one top-level entry a line, at most `limit` lines."""
    lines = []
    for key, value in evidence.items():
        if isinstance(value, dict):
            shown = ((k, _value(f"{key} {k}", v)) for k, v in value.items())
            text = ", ".join(f"{_words(k)} {v}" for k, v in shown if v)
        else:
            text = _value(key, value)
        if text:
            lines.append(f"{_words(key)}: {text}")
        if len(lines) == limit:
            break
    return lines


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if "ratio" in key:
            return f"{value:,.4g}×"
        if any(word in key for word in _PERCENT_WORDS) and abs(value) <= 10:
            return f"{value:.1%}"
        return f"{value:,.6g}" if isinstance(value, float) else f"{value:,}"
    if isinstance(value, str):
        return value[:80]
    return ""  # lists and deeper documents: too much for a message; the console shows them


def _words(key: str) -> str:
    return key.replace("_", " ").strip()
