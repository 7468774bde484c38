"""Running the API: health, metrics, body limits, a database outage, the serve command, logs, OpenAPI."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import make_url
from typer.testing import CliRunner

from tapewatch.api import create_app
from tapewatch.api.logs import RedactTokens
from tapewatch.cli.app import user_errors
from tapewatch.cli.serve import check_port_free, serve
from tapewatch.errors import InputError
from tapewatch.store.alert_store import open_store
from unit.store.tcp_proxy import TcpProxy
from unit.store.test_store import make_alert, postgres_schema

from .harness import PASSWORD, Api, add_users, api_settings


def test_healthz_tells_anyone_the_status_and_only_an_admin_the_database(api: Api) -> None:
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for role in ("viewer", "analyst"):
        assert api.get("/healthz", role=role).json() == {"status": "ok"}
    detailed = api.get("/healthz", role="admin").json()
    assert detailed["status"] == "ok" and detailed["database"] in ("sqlite", "postgresql")
    assert detailed["version"]


def test_metrics_count_requests_by_route_template_and_time_them(sqlite_api: Api) -> None:
    (alert,) = sqlite_api.save(make_alert(0))
    for _ in range(3):
        assert sqlite_api.get(f"/api/v1/alerts/{alert.id}").status_code == 200
    sqlite_api.client.get("/api/v1/alerts")  # 401
    text = sqlite_api.client.get("/metrics").text
    assert (
        'tapewatch_http_requests_total{method="GET",route="/api/v1/alerts/{alert_id}",status="200"} 3.0'
        in text
    )
    assert 'tapewatch_http_requests_total{method="GET",route="/api/v1/alerts",status="401"} 1.0' in text
    assert (
        'tapewatch_http_request_duration_seconds_count{method="GET",route="/api/v1/alerts/{alert_id}"} 3.0'
        in text
    )
    assert "tapewatch_ws_clients 0.0" in text and "tapewatch_feed_alerts_total" in text
    assert alert.id not in text


def test_bodies_over_the_limit_are_413_whether_declared_or_streamed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'limit.db'}"
    with open_store(url) as store:
        keys = add_users(store)
    app = create_app(api_settings(max_body_bytes=2048), db=url)
    headers = {"Authorization": f"Bearer {keys['viewer']}", "content-type": "application/json"}
    big = b'{"trades": [' + b" " * 4000 + b"]}"
    with TestClient(app) as client:
        declared = client.post("/api/v1/detect", content=big, headers=headers)
        assert declared.status_code == 413
        assert declared.json()["detail"] == (
            "request body: 4,014 bytes; expected at most 2,048 bytes (api.max_body_bytes)"
        )
        streamed = client.post("/api/v1/detect", content=iter([big[:1500], big[1500:]]), headers=headers)
        assert streamed.status_code == 413 and "more than 2,048 bytes" in streamed.json()["detail"]
        small = client.post("/api/v1/detect", content=iter([b'{"trades": []}']), headers=headers)
        assert small.status_code == 422 and "at least one row" in small.json()["detail"]


@pytest.mark.postgres
def test_a_database_outage_is_503_and_the_api_recovers_when_it_returns() -> None:
    with postgres_schema() as direct:
        target = make_url(direct)
        with TcpProxy((target.host, target.port)) as proxy:
            url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            with open_store(url) as store:
                keys = add_users(store)
            with TestClient(create_app(api_settings(), db=url)) as client:
                headers = {"Authorization": f"Bearer {keys['viewer']}"}
                assert client.get("/api/v1/alerts", headers=headers).status_code == 200
                admin = {"Authorization": f"Bearer {keys['admin']}"}
                assert client.get("/healthz", headers=admin).status_code == 200  # the key, now cached
                proxy.down()
                health = client.get("/healthz")
                assert health.status_code == 503 and health.json() == {"status": "unavailable"}
                told = client.get("/healthz", headers=admin)
                assert told.status_code == 503 and str(proxy.port) in told.json()["detail"]
                down = client.get(
                    "/api/v1/alerts?limit=7", headers=headers
                )  # a page not served (cached) before
                assert down.status_code == 503 and down.json()["detail"].startswith(
                    "the database is unavailable"
                )
                feed = client.app.state.context.feed
                deadline = time.monotonic() + 10
                while feed.stats.failures == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert feed.stats.failures > 0  # the live feed's poller keeps trying, it does not die
                proxy.up()
                assert client.get("/healthz").status_code == 200
                assert client.get("/api/v1/alerts", headers=headers).status_code == 200
                polls = feed.stats.polls
                while feed.stats.polls == polls and time.monotonic() < deadline + 10:
                    time.sleep(0.05)
                assert feed.stats.polls > polls and feed.stats.failures == 0


def test_serve_refuses_a_busy_port_and_a_bad_database_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"--port {port}: already in use on 127.0.0.1"):
            check_port_free("127.0.0.1", port)
    with pytest.raises(InputError, match="--host 'no.such.host.invalid'"):
        check_port_free("no.such.host.invalid", 8400)
    with pytest.raises(InputError, match="unsupported database 'mysql'"):
        serve(host="127.0.0.1", port=_free_port(), db="mysql://x@localhost/db", lake=None, config=None)
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[api]\nport = 0\n")
    with pytest.raises(InputError, match="api.port"):
        serve(host=None, port=None, db=None, lake=None, config=bad_config)


def test_api_keys_in_websocket_urls_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tapewatch.test.redact")
    logger.addFilter(RedactTokens())
    with caplog.at_level(logging.INFO, logger="tapewatch.test.redact"):
        logger.info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/api/v1/ws/alerts?token=tw_AbCdEfGh_secret"
        )
        logger.info("GET /x?a=1&token=tw_secret2&b=2")
    assert "secret" not in caplog.text and caplog.text.count("token=***") == 2


def test_the_session_secret_is_random_and_warned_about_when_unset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tapewatch.config import Settings

    with caplog.at_level(logging.WARNING, logger="tapewatch.api.app"):
        create_app(Settings(), db=str(tmp_path / "s.db"))
    assert "api.session_secret is not set" in caplog.text


def test_openapi_declares_a_response_model_and_errors_for_every_operation(sqlite_api: Api) -> None:
    spec = sqlite_api.client.get("/api/v1/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, (method, path)
            for code in success:
                content = operation["responses"][code].get("content")
                assert code == "204" or content, (method, path, code)
                if content and "application/json" in content:
                    assert content["application/json"]["schema"], (method, path)
            if path.startswith("/api/v1/") and path != "/api/v1/session":
                assert {"401", "422"} <= set(operation["responses"]), (method, path)
            for code in ("401", "403", "404", "409", "422"):
                if code in operation["responses"]:
                    schema = operation["responses"][code]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
    assert {"HTTPBearer", "APIKeyHeader", "APIKeyCookie"} <= set(spec["components"]["securitySchemes"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVE = (
    "import sys; from tapewatch.cli.serve import serve; "
    "serve(host='127.0.0.1', port=int(sys.argv[1]), db=sys.argv[2], lake=None, workers=2, config=None)"
)


def test_serve_with_two_workers_shares_one_session_secret(tmp_path: Path) -> None:
    """A cookie signed by one worker process is accepted by the other (none configured: one is drawn)."""
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    with open_store(url) as store:
        add_users(store)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_API__")}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        statuses = []
        for _ in range(12):  # new connections each time: the kernel spreads them over both workers
            cookies = httpx.post(f"{base}/api/v1/session", json={"name": "vic", "password": PASSWORD}).cookies
            statuses.append(httpx.get(f"{base}/api/v1/session", cookies=cookies).status_code)
        assert statuses == [200] * 12
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert "Started parent process" in output and output.count("Started server process") == 2
    assert PASSWORD not in output


def test_serve_as_a_cli_command_reports_a_bad_database_in_one_line() -> None:
    """Registered the way cli/app.py registers it (`user_errors`): exit code 2 and one line, no traceback."""
    cli = typer.Typer()
    cli.command()(user_errors(serve))
    cli.callback()(lambda: None)
    result = CliRunner().invoke(cli, ["serve", "--db", "mysql://x@localhost/db", "--port", str(_free_port())])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store URL mysql://x@localhost/db: unsupported")
