"""The REST + WebSocket API (FastAPI): `create_app(settings)` builds it; `tapewatch serve` is in `tapewatch.cli.serve`.

`create_app` is imported on first use, so importing this package does not load FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tapewatch.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tapewatch.api.app import create_app

        return create_app
    raise AttributeError(f"module 'tapewatch.api' has no attribute {name!r}")
