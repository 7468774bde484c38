"""What long work reports its progress to, without knowing how it is shown.

The CLI passes a rich progress bar (which has these methods); library callers, the API
and tests pass nothing, and the work runs silent. Keeping the packages below the CLI
free of rich means they can run where no terminal is.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """The part of `rich.progress.Progress` long work uses: tasks added, advanced, updated, removed."""

    def add_task(self, description: str, total: float | None = 100.0) -> Any: ...

    def advance(self, task_id: Any, advance: float = 1) -> None: ...

    def update(self, task_id: Any, *, total: float | None = None, completed: float | None = None) -> None: ...

    def remove_task(self, task_id: Any) -> None: ...


class _Silent:
    """Progress that goes nowhere: for runs without a terminal."""

    def add_task(self, description: str, total: float | None = 100.0) -> None:
        return None

    def advance(self, task_id: Any, advance: float = 1) -> None:
        return None

    def update(self, task_id: Any, *, total: float | None = None, completed: float | None = None) -> None:
        return None

    def remove_task(self, task_id: Any) -> None:
        return None


SILENT: Progress = _Silent()
