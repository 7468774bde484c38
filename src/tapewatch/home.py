"""Where Tapewatch keeps its files when nobody says: one folder, so a laptop install needs no set-up."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """`$TAPEWATCH_HOME`, else `~/.tapewatch/`: the default store and lake live here."""
    home = os.environ.get("TAPEWATCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".tapewatch"
