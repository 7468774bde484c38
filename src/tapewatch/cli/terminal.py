"""The terminal every command writes to: one stderr console, and the progress bar long work shows on it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

err = Console(stderr=True, soft_wrap=True)
"""Messages for people (summaries, warnings, errors): stdout stays for results that scripts read."""


def progress_bar() -> Progress:
    """Progress on stderr; rich shows nothing when stderr is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
