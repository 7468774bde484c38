"""Sessions end on the server (log-out, password change, removal, key revocation), keys die with the key
that made them, and log-ins are throttled with answers that take as long whether the user exists or not."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from tapewatch.api.security import SESSION_COOKIE
from tapewatch.api.throttle import Backoff, LoginThrottle
from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM, Actor

from .harness import PASSWORD, Api

WRONG = "wrong-password"


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in on this client; the session cookie's value."""
    response = client.post("/api/v1/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return client.cookies[SESSION_COOKIE]


def with_cookie(client: TestClient, cookie: str) -> int:
    """The status of GET /session presenting exactly this cookie (as a thief replaying it would)."""
    client.cookies.clear()
    return client.get("/api/v1/session", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}).status_code


def test_a_logged_out_cookie_is_refused_at_once_by_every_server(api: Api) -> None:
    cookie = log_in(api.client, "ana")
    with TestClient(api.another_app()) as other:
        assert with_cookie(other, cookie) == 200  # the other server honours it
        api.client.cookies.set(SESSION_COOKIE, cookie)
        assert api.client.delete("/api/v1/session").status_code == 204
        assert with_cookie(api.client, cookie) == 401
        assert with_cookie(other, cookie) == 401  # no cache to wait for: the row says it ended


def test_a_password_change_ends_every_session_of_that_user_only(api: Api) -> None:
    ana_1 = log_in(api.client, "ana")
    with TestClient(api.another_app()) as other_browser:
        ana_2 = log_in(other_browser, "ana")
    api.client.cookies.clear()
    vic = log_in(api.client, "vic")
    changed = api.client.put(
        "/api/v1/users/ana/password", json={"password": "a-new-passphrase"}, headers=api.headers("admin")
    )
    assert changed.status_code == 200
    assert with_cookie(api.client, ana_1) == 401 and with_cookie(api.client, ana_2) == 401
    assert with_cookie(api.client, vic) == 200
    refused = api.client.post("/api/v1/session", json={"name": "ana", "password": PASSWORD})
    assert refused.status_code == 401
    log_in(api.client, "ana", "a-new-passphrase")
    audit = api.get("/api/v1/audit", role="admin", params={"entity": "user"}).json()["items"]
    assert audit[0]["action"] == "user.password" and audit[0]["details"]["sessions_ended"] == 2


def test_logging_in_again_in_the_same_browser_ends_its_previous_session(api: Api) -> None:
    first = log_in(api.client, "ana")
    second = log_in(api.client, "vic")  # the browser still sends the first cookie
    assert with_cookie(api.client, first) == 401
    assert with_cookie(api.client, second) == 200
    api.client.cookies.set(SESSION_COOKIE, second)
    assert api.client.get("/api/v1/session").json()["user"] == "vic"


def test_removing_a_user_ends_their_sessions_and_keys_and_they_cannot_come_back(api: Api) -> None:
    cookie = log_in(api.client, "ana")
    removed = api.client.delete("/api/v1/users/ana", headers=api.headers("admin"))
    assert removed.status_code == 200 and removed.json()["disabled"] is True
    assert with_cookie(api.client, cookie) == 401
    assert api.get("/api/v1/session", role="analyst").status_code == 401  # its key, revoked
    assert all(key.revoked_at is not None for key in auth.list_api_keys(api.store.engine, "ana"))
    api.client.cookies.clear()
    assert api.client.post("/api/v1/session", json={"name": "ana", "password": PASSWORD}).status_code == 401
    again = api.post("/api/v1/keys", {"user": "ana"}, role="admin")
    assert again.status_code == 409 and "has been removed" in again.json()["detail"]
    yourself = api.client.delete("/api/v1/users/ada", headers=api.headers("admin"))
    assert yourself.status_code == 409 and "cannot remove yourself" in yourself.json()["detail"]


def test_revoking_a_key_ends_its_sessions_and_every_key_made_with_it(api: Api) -> None:
    admin_key = api.keys["admin"]
    bearer = {"Authorization": f"Bearer {admin_key}"}
    child = api.client.post("/api/v1/keys", json={"user": "ada", "name": "child"}, headers=bearer).json()
    grandchild = api.client.post(
        "/api/v1/keys",
        json={"user": "vic", "name": "grandchild"},
        headers={"Authorization": f"Bearer {child['secret']}"},
    ).json()
    api.client.cookies.clear()
    api.client.post("/api/v1/session", json={"api_key": child["secret"]})
    cookie = api.client.cookies[SESSION_COOKIE]
    # a key made through a session opened with a key is that key's child too
    via_session = api.client.post("/api/v1/keys", json={"user": "ana", "name": "via-session"})
    assert via_session.status_code == 201
    with TestClient(api.another_app()) as by_password:
        log_in(by_password, "ada")
        independent = by_password.post("/api/v1/keys", json={"user": "ana", "name": "independent"}).json()

    parent_id = auth.list_api_keys(api.store.engine, "ada")[0].id
    assert api.client.delete(f"/api/v1/keys/{parent_id}", headers=api.headers("admin")).status_code == 200

    for secret in (admin_key, child["secret"], grandchild["secret"], via_session.json()["secret"]):
        assert (
            api.client.get("/api/v1/session", headers={"Authorization": f"Bearer {secret}"}).status_code
            == 401
        )
    assert with_cookie(api.client, cookie) == 401
    alive = {"Authorization": f"Bearer {independent['secret']}"}
    assert api.client.get("/api/v1/session", headers=alive).json()["user"] == "ana"
    revocations = api.get("/api/v1/audit", role="analyst", params={"entity": "api_key"}).json()["items"]
    assert sum(entry["action"] == "key.revoke" for entry in revocations) == 4


def test_failed_log_ins_back_off_per_name_with_retry_after(api: Api) -> None:
    for _ in range(5):
        assert api.client.post("/api/v1/session", json={"name": "ana", "password": WRONG}).status_code == 401
    throttled = api.client.post("/api/v1/session", json={"name": "ana", "password": PASSWORD})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "1"
    assert "too many failed log-ins" in throttled.json()["detail"]
    assert api.client.post("/api/v1/session", json={"name": "vic", "password": PASSWORD}).status_code == 200
    time.sleep(1.05)
    assert api.client.post("/api/v1/session", json={"name": "ana", "password": WRONG}).status_code == 401
    assert (
        api.client.post("/api/v1/session", json={"name": "ana", "password": PASSWORD}).headers["retry-after"]
        == "2"
    )  # doubled


def test_wrong_passwords_sent_at_once_cannot_outrun_the_back_off(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every guess is held inside the password check until each of them has either reached the check
    # or been answered: a guess not counted before its check would let all of them through.
    guesses = 30  # fewer than the app's 40 worker threads, so every guess can wait inside the check
    lock, decided, everyone_decided = threading.Lock(), [0], threading.Event()

    def decide() -> None:
        with lock:
            decided[0] += 1
            if decided[0] == guesses:
                everyone_decided.set()

    real = auth.authenticate_password

    def held_check(engine: Engine, name: str, password: str) -> Actor | None:
        decide()
        assert everyone_decided.wait(10), "not every guess was checked or answered within 10 s"
        return real(engine, name, password)

    monkeypatch.setattr(auth, "authenticate_password", held_check)

    def guess(_: int) -> int:
        status = sqlite_api.client.post(
            "/api/v1/session", json={"name": "ana", "password": WRONG}
        ).status_code
        if status != 401:
            decide()
        return status

    with ThreadPoolExecutor(guesses) as pool:
        statuses = list(pool.map(guess, range(guesses)))
    assert statuses.count(401) == 5 and statuses.count(429) == guesses - 5, statuses


def test_a_log_in_the_database_could_not_check_is_not_held_against_anyone(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(engine: Engine, name: str, password: str) -> Actor | None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    with monkeypatch.context() as patched:
        patched.setattr(auth, "authenticate_password", database_down)
        for _ in range(6):
            down = sqlite_api.client.post("/api/v1/session", json={"name": "ana", "password": WRONG})
            assert down.status_code == 503
    assert log_in(sqlite_api.client, "ana")  # not 429: none of the six counted as a failure


def test_one_address_spraying_many_names_is_throttled_too(api: Api) -> None:
    for attempt in range(20):
        body = {"name": f"guess{attempt}", "password": WRONG}
        assert api.client.post("/api/v1/session", json=body).status_code == 401
    for body in ({"name": "vic", "password": PASSWORD}, {"api_key": api.keys["viewer"]}):
        assert api.client.post("/api/v1/session", json=body).status_code == 429
    assert api.get("/api/v1/session", role="viewer").status_code == 200  # keys on requests are not log-ins


def test_the_back_off_doubles_up_to_its_cap_and_is_forgotten() -> None:
    now = [0.0]
    backoff = Backoff(free=2, first_wait_s=1, cap_s=8, forget_s=100, clock=lambda: now[0])
    waits = []
    for _ in range(7):
        backoff.failed("ana")
        waits.append(backoff.wait_s("ana"))
    assert waits == [0, 1, 2, 4, 8, 8, 8]
    assert backoff.wait_s("bob") == 0
    now[0] = 5.0
    assert backoff.wait_s("ana") == 3
    now[0] = 101.0
    assert backoff.wait_s("ana") == 0
    backoff.failed("ana")
    assert backoff.wait_s("ana") == 0  # counting starts again


def test_an_attempt_is_counted_before_its_check_and_taken_back_unless_it_failed() -> None:
    throttle = LoginThrottle(Backoff(free=1), Backoff(free=2))
    assert throttle.attempt("ana", "10.0.0.1") is None  # let through: ana 1, 10.0.0.1 1
    assert throttle.attempt("ana", "10.0.0.2") == 1  # ana owes a wait; 10.0.0.2 is not counted for it
    assert throttle.attempt("bob", "10.0.0.2") is None and throttle.attempt("bob", "10.0.0.2") == 1
    throttle.refund("bob", "10.0.0.2")  # bob's check could not be made: neither count keeps it
    assert throttle.attempt("bob", "10.0.0.2") is None
    throttle.succeeded("bob", "10.0.0.2")  # bob's count is cleared, the attempt taken back from the address
    assert throttle.attempt("bob", "10.0.0.2") is None and throttle.attempt("cy", "10.0.0.2") is None
    assert throttle.attempt("dan", "10.0.0.2") == 1  # 10.0.0.2 has used its 2 free failures
    throttle.succeeded("ana", "10.0.0.1")
    assert throttle.attempt("ana", "10.0.0.3") is None


def test_an_unknown_name_costs_the_same_scrypt_as_a_wrong_password(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda pw, stored: checks.append(stored) or real(pw, stored))
    engine = sqlite_api.store.engine
    auth.create_user(engine, SYSTEM, "nopass", "viewer")  # no password: console log-in impossible
    for name in ("ana", "nobody", "nopass"):
        assert auth.authenticate_password(engine, name, WRONG) is None
    assert len(checks) == 3 and all(stored.startswith("scrypt$") for stored in checks)

    def timed(name: str) -> float:
        start = time.perf_counter()
        auth.authenticate_password(engine, name, WRONG)
        return time.perf_counter() - start

    known = statistics.median(timed("ana") for _ in range(5))
    unknown = statistics.median(timed("nobody") for _ in range(5))
    assert 0.5 < unknown / known < 2, (known, unknown)  # was 1.2 ms against 30 ms
