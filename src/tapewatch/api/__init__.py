"""The REST + WebSocket API (FastAPI): `create_app(settings)` builds it, `serve` is the CLI command.

`create_app` is imported on first use, so `from tapewatch.api.command import serve`
(what the CLI registers) does not load FastAPI for every other command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tapewatch.api.app import create_app
    from tapewatch.api.command import serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tapewatch.api.app import create_app

        return create_app
    if name == "serve":
        from tapewatch.api.command import serve

        return serve
    raise AttributeError(f"module 'tapewatch.api' has no attribute {name!r}")
