"""How the console's files are served (no browser needed): types, security headers, Plotly, nothing else."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tapewatch.console import STATIC, mount_console, plotly_js_path
from tapewatch.records import Typology
from tapewatch.store.models import DISPOSITIONS, SEVERITIES

IMPORT = re.compile(r"""^import\s[^"']*["'](\./[^"']+)["'];""", re.MULTILINE)


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    mount_console(app)
    return TestClient(app)


def test_the_page_is_served_with_a_policy_that_allows_only_its_own_scripts(client: TestClient) -> None:
    response = client.get("/console/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="app.js"></script>' in response.text


def test_root_and_the_bare_prefix_lead_to_the_console(client: TestClient) -> None:
    for path in ("/", "/console"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/console/"


def test_every_module_the_page_imports_is_served_as_javascript(client: TestClient) -> None:
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/console/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"  # modules need it
        pending.extend(target.removeprefix("./") for target in IMPORT.findall(response.text))
    assert {"app.js", "api.js", "live.js", "chart.js", "alerts.js", "settings.js"} <= seen
    unused = {path.name for path in STATIC.glob("*.js")} - seen
    assert not unused, f"modules nothing imports: {sorted(unused)}"


def test_plotly_comes_from_the_installed_plotly_package(client: TestClient) -> None:
    path = plotly_js_path()
    assert path is not None and "plotly" in path.parts
    response = client.get("/console/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "plotly.js" in response.text[:200]
    assert int(response.headers["content-length"]) == path.stat().st_size


@pytest.mark.parametrize("name", ["__init__.py", "nope.js", "..%2F__init__.py", "static"])
def test_only_the_shipped_files_are_served(client: TestClient, name: str) -> None:
    response = client.get(f"/console/{name}")
    assert response.status_code == 404
    assert "no such file" in response.json()["detail"] or response.json()["detail"] == "Not Found"


def test_the_menus_words_come_from_the_code_that_defines_them(client: TestClient) -> None:
    words = client.get("/console/vocabulary.json").json()
    assert words["typologies"] == list(get_args(Typology))
    assert words["severities"] == list(SEVERITIES)
    assert words["dispositions"] == list(DISPOSITIONS)
    assert "in_case" in words["alert_statuses"]
