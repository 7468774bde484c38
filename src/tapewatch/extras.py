"""Optional features and the extra that installs each: `pip install tapewatch` detects in files, runs the
demo and keeps the store; live sources, the service, models and the bus are extras (pyproject.toml).

A command that needs an extra checks for it first, so a missing library is one line naming the extra to
install rather than an ImportError traceback from deep inside the command. Checking with `find_spec`
imports nothing, so the check costs no start-up time.
"""

from __future__ import annotations

import importlib.util

from tapewatch.errors import InputError


def require(extra: str, *modules: str, command: str) -> None:
    """Raise a one-line InputError naming `extra` when any of `modules` (import names) is not installed."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise InputError(
                f"{command} needs the [{extra}] extra, which is not installed ({module} is missing): "
                f"pip install 'tapewatch[{extra}]'"
            )
