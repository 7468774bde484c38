"""Alerts as JSON lines: the stable output of `tapewatch detect` that scripts consume."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

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


class AlertLineWriter:
    """Alerts appended one line at a time as a stream emits them, flushed so a reader sees each at once.

    A follow-up update is written as another line with the same id: readers keep
    the last line per id.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = path.open("a", encoding="utf-8") if path is not None else sys.stdout

    def write(self, alerts: Iterable[Alert]) -> None:
        """Append and flush; a stream calls this every step, so an empty batch costs nothing."""
        lines = [alert.to_json_line() + "\n" for alert in alerts]
        if lines:
            self._handle.writelines(lines)
            self._handle.flush()

    def close(self) -> None:
        if self.path is not None:
            self._handle.close()
