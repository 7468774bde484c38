"""A context manager for objects that hold something to release: `with X(...) as x:` calls `x.close()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """Mixin: entering returns the object, leaving (even by an exception) calls its `close()`.

    For classes that are also used without `with` (long-lived services call `close()`
    themselves), so the release lives in `close` and the context manager only calls it.
    """

    def close(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
