"""The console's people and sessions over real HTTP, on SQLite and PostgreSQL: users made by
admins, sign-in, cookies, idle expiry, a disabled user's sessions, the forms' guard against
other sites, the language, and nothing loaded from another host."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.waiting import eventually

PASSWORD = "a long enough secret"


@pytest.fixture(scope="module")
def ledger(shared_server: Server) -> Iterator[httpx.Client]:
    with shared_server.client() as client:
        yield client


def make_user(ledger: httpx.Client, name: str, role: str = "write") -> None:
    response = ledger.post("/users", json={"name": name, "password": PASSWORD, "role": role})
    assert response.status_code == 201, response.text


def signed_in(server: Server, name: str, password: str = PASSWORD) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, timeout=60)
    answer = browser.post("/ui/sign-in", data={"name": name, "password": password})
    assert answer.status_code == 303, answer.text
    return browser


def csrf_of(browser: httpx.Client, path: str = "/ui/record") -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_users_are_made_listed_and_disabled_by_admins_only(
    shared_server: Server, ledger: httpx.Client
) -> None:
    created = ledger.post("/users", json={"name": "ana", "password": PASSWORD, "role": "write"})
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "write"
    assert created.json()["disabled_at"] is None
    assert "password" not in created.text
    assert PASSWORD not in created.text
    again = ledger.post("/users", json={"name": "ana", "password": PASSWORD, "role": "read"})
    assert again.status_code == 409
    assert again.json()["error"] == "name_taken"
    for body, field in (
        ({"name": "bob", "password": "short", "role": "read"}, "password"),
        ({"name": "bob", "password": PASSWORD, "role": "boss"}, "role"),
        ({"name": " bob", "password": PASSWORD, "role": "read"}, "name"),
        ({"name": "bob", "password": "x" * 300, "role": "read"}, "password"),
    ):
        refused = ledger.post("/users", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.text
    assert [u["name"] for u in ledger.get("/users").json()] == ["ana"]
    token = ledger.post("/tokens", json={"name": "robot", "permissions": ["write"]}).json()
    with shared_server.client(token["token"]) as robot:
        assert (
            robot.post(
                "/users", json={"name": "x", "password": PASSWORD, "role": "admin"}
            ).status_code
            == 403
        )
        assert robot.get("/users").status_code == 403
    assert ledger.delete("/users/nobody").status_code == 404
    disabled = ledger.delete("/users/ana")
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None


def test_signing_in_sets_a_guarded_cookie_and_wrong_names_or_passwords_are_refused(
    shared_server: Server, ledger: httpx.Client
) -> None:
    make_user(ledger, "bia")
    with httpx.Client(base_url=shared_server.url) as browser:
        assert browser.get("/ui/stock").headers["location"].startswith("/ui/sign-in?next=")
        for name, password in (("bia", "wrong password"), ("nobody", PASSWORD), ("", "")):
            refused = browser.post("/ui/sign-in", data={"name": name, "password": password})
            assert refused.status_code == 401, refused.text
            assert "ledger_session" not in refused.headers.get("set-cookie", "")
        answer = browser.post(
            "/ui/sign-in", data={"name": "bia", "password": PASSWORD, "next": "//evil.example/"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/stock"  # never another site
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        assert browser.get("/ui/stock").status_code == 200
        # Signing out ends the session on the server, not only in this browser.
        secret = browser.cookies["ledger_session"]
        out = browser.post("/ui/sign-out", data={"csrf": csrf_of(browser)})
        assert out.status_code == 303
    with httpx.Client(base_url=shared_server.url, cookies={"ledger_session": secret}) as stale:
        assert stale.get("/ui/stock").status_code == 303


def test_a_disabled_users_sessions_end_at_once(shared_server: Server, ledger: httpx.Client) -> None:
    make_user(ledger, "caio")
    browser = signed_in(shared_server, "caio")
    assert browser.get("/ui/stock").status_code == 200
    assert ledger.delete("/users/caio").status_code == 200
    assert browser.get("/ui/stock").status_code == 303
    assert browser.get("/ui/stock/rows").status_code == 401  # the live parts stop polling
    again = browser.post("/ui/sign-in", data={"name": "caio", "password": PASSWORD})
    assert again.status_code == 401


def test_a_form_needs_its_token_and_this_sites_origin_and_records_the_persons_name(
    shared_server: Server, ledger: httpx.Client
) -> None:
    make_user(ledger, "duda")
    browser = signed_in(shared_server, "duda")
    csrf = csrf_of(browser)
    body = {
        "movement_id": "duda-1",
        "sku": "FORM-1",
        "warehouse": "main",
        "kind": "invoice",
        "quantity": "4,5",
        "reference": "NF 9",
    }
    for data, headers in (
        (body, {}),  # no token
        ({**body, "csrf": "forged"}, {}),
        ({**body, "csrf": csrf}, {"Origin": "http://evil.example"}),
        ({**body, "csrf": csrf}, {"Origin": "null"}),
        ({**body, "csrf": csrf}, {"Referer": "http://evil.example/page"}),
    ):
        refused = browser.post("/ui/record", data=data, headers=headers)
        assert refused.status_code == 403, (data, headers, refused.text)
    assert ledger.get("/stock/FORM-1").status_code == 404  # nothing was recorded
    origin = shared_server.url
    for _ in range(2):  # a double submit records once
        done = browser.post("/ui/record", data={**body, "csrf": csrf}, headers={"Origin": origin})
        assert done.status_code == 303, done.text
    stock = ledger.get("/stock/FORM-1").json()
    assert stock["physical"] == "4.5"  # a decimal comma, as Brazilians type it
    items = eventually(
        lambda: ledger.get("/movements", params={"sku": "FORM-1"}).json()["items"], "report"
    )
    assert [(m["recorded_by"], m["reference"]) for m in items] == [("duda", "NF 9")]
    bad = browser.post(
        "/ui/record", data={**body, "movement_id": "duda-2", "quantity": "abc", "csrf": csrf}
    )
    assert bad.status_code == 422
    assert "quantity" in bad.text
    assert 'value="abc"' in bad.text  # the form comes back as it was typed


def test_the_language_follows_the_browser_and_the_switch(
    shared_server: Server, ledger: httpx.Client
) -> None:
    with httpx.Client(base_url=shared_server.url) as browser:
        portuguese = browser.get("/ui/sign-in", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
        assert 'lang="pt-BR"' in portuguese.text
        assert "Entrar" in portuguese.text
        english = browser.get("/ui/sign-in", headers={"Accept-Language": "en-US,pt;q=0.5"})
        assert 'lang="en"' in english.text
        assert "Sign in" in english.text
        switched = browser.get("/ui/language", params={"lang": "pt-BR", "next": "/ui/sign-in"})
        assert switched.status_code == 303
        after = browser.get("/ui/sign-in", headers={"Accept-Language": "en-US"})
        assert 'lang="pt-BR"' in after.text


def test_every_page_loads_only_from_the_ledger_itself(
    shared_server: Server, ledger: httpx.Client
) -> None:
    make_user(ledger, "root-ui", "admin")
    ledger.post(
        "/movements",
        json={"movement_id": "own-1", "sku": "OWN-1", "kind": "invoice", "quantity": "1"},
    )
    browser = signed_in(shared_server, "root-ui")
    for path in ("/ui/stock", "/ui/stock/OWN-1", "/ui/record", "/ui/users", "/ui/sign-in"):
        page = browser.get(path)
        assert page.status_code == 200, (path, page.text)
        loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert loaded
        assert [url for url in loaded if re.match(r"(https?:)?//", url)] == []
        for asset in (u for u in loaded if u.startswith("/ui/static/")):
            assert browser.get(asset).status_code == 200


def test_a_password_never_reaches_the_event_store(postgres_url: str, tmp_path: Path) -> None:
    server = start_server(postgres_url, tmp_path)
    try:
        with server.client() as ledger:
            make_user(ledger, "eva", "admin")
            signed_in(server, "eva").close()
    finally:
        stop_server(server)
    schema = postgres_url.split("schema=")[1]
    with psycopg.connect(postgres_url.split("?")[0]) as conn:
        rows = conn.execute(f'SELECT state FROM "{schema}".ledger_events').fetchall()
    stored = b"".join(bytes(r[0]) for r in rows)
    assert b"eva" in stored
    assert PASSWORD.encode() not in stored
    assert b"$argon2id$" in stored


def test_a_session_ends_after_its_idle_time(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path, LEDGER_SESSION_IDLE_MINUTES="0.02")
    try:
        with server.client() as ledger:
            make_user(ledger, "fabi")
        browser = signed_in(server, "fabi")
        assert browser.get("/ui/stock").status_code == 200
        time.sleep(1.5)  # 0.02 minutes is 1.2 s: the session must be gone, not still valid
        assert browser.get("/ui/stock").headers["location"].startswith("/ui/sign-in")
    finally:
        stop_server(server)
