"""Alerts as JSON lines: the stable output of `tapewatch detect` that scripts consume."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from tapewatch.records import Alert


def write_alerts(alerts: Iterable[Alert], path: Path | None) -> int:
    """Write one alert per line to `path` (parents created) or to stdout when None; returns the count."""
    lines = [alert.to_json_line() for alert in alerts]
    text = "".join(line + "\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return len(lines)
