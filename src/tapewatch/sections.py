"""The base of every config section, below both the detectors and the config that composes them.

Each detector family keeps its settings beside its code (`tapewatch.detect.<family>.settings`) and
`tapewatch.config` adds the infrastructure sections; both need the one rule every section follows.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys are an error, so a typo never silently keeps a default."""

    model_config = ConfigDict(extra="forbid")
