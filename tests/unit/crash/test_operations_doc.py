"""docs/OPERATIONS.md names a test for each claim: every test it names must exist, or the claim has no proof."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?::(test_\w+)`")


def test_every_test_the_operations_guide_names_exists():
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    named, missing, current = 0, [], None
    for path, name in REFERENCE.findall(text):
        current = path or current
        assert current is not None, f"::{name} names no file before it"
        named += 1
        if not re.search(rf"^(async )?def {name}\(", (ROOT / current).read_text(), re.MULTILINE):
            missing.append(f"{current}::{name}")
    assert named >= 20 and missing == []
