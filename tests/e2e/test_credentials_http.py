"""Platform settings and credentials through the real server: settings checked at PUT,
credentials encrypted outside the event log and never shown anywhere, old data still working."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from adapters.database import parse_database_url
from adapters.vtex_emulator import VtexEmulator
from api.settings import Settings
from api.wiring import build
from tests.e2e.conftest import TEST_SECRET_KEY, Server, start_server, stop_server
from tests.e2e.test_platforms_http import move
from tests.integration.test_credentials import legacy_settings, write_legacy_platform
from tests.waiting import eventually

HOOK_HEADER = "X-Ledger-Hook-Secret"


def random_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(48)


@pytest.fixture
def vtex() -> Iterator[VtexEmulator]:
    """An emulator that accepts only these long random credentials."""
    emulator = VtexEmulator(
        app_key=random_secret("vtexappkey-acme-"), app_token=random_secret()
    ).start()
    yield emulator
    emulator.close()


def vtex_body(vtex: VtexEmulator, credentials: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "vtex",
        "base_url": vtex.url,
        "warehouses": {"main": "1_1"},
        "carriers": {"Correios": "correios"},
        "feed_interval_seconds": 1,
        "payment_check_seconds": 1,
    }
    if credentials is not None:
        body["credentials"] = credentials
    return body


def put(server: Server, name: str, body: Any) -> httpx.Response:
    with server.client() as client:
        return client.put(f"/platforms/{name}", json=body)


def get(server: Server, path: str) -> httpx.Response:
    with server.client() as client:
        return client.get(path)


# -- settings checked at PUT -----------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("a base_url that does not parse", {"base_url": "http://[::1"}, "base_url"),
    ("plain http to another host", {"base_url": "http://shop.example/"}, "base_url"),
    ("a password in the base_url", {"base_url": "https://u:p@shop.example/"}, "base_url"),
    ("a fragment in the base_url", {"base_url": "https://shop.example/#x"}, "base_url"),
    ("a line feed in the base_url", {"base_url": "https://shop.example/\r\nX: y"}, "base_url"),
    ("a non-ASCII credential", {"credentials": {"secret": "s\u00e9cret"}}, "credentials.secret"),
    ("a credential with a line feed", {"credentials": {"secret": "a\nb"}}, "credentials.secret"),
    ("a credential with a space", {"credentials": {"secret": "a b"}}, "credentials.secret"),
    ("a credential name '..'", {"credentials": {"..": "x"}}, "credentials"),
    ("a NUL in a ledger warehouse", {"warehouses": {"ma\u0000in": "W1"}}, "warehouses"),
    ("a NUL in a platform warehouse", {"warehouses": {"main": "W\u00001"}}, "warehouses.main"),
    ("a NUL in a SKU mapping", {"skus": {"SKU-1": "1\u00002"}}, "skus.SKU-1"),
    ("a '..' SKU mapping", {"skus": {"..": "1"}}, "skus"),
    ("a carrier name on two lines", {"carriers": {"PAC\nX": "pac"}}, "carriers"),
    ("a NUL in a ledger carrier", {"carriers": {"PAC": "p\u0000"}}, "carriers.PAC"),
    ("two warehouses to one id", {"warehouses": {"a": "W1", "b": "W1"}}, "warehouses"),
    ("an unknown setting", {"secret": "x"}, "secret"),
    ("a rate of zero", {"rate_limit": 0}, "rate_limit"),
    ("allow_insecure_http as text", {"allow_insecure_http": "true"}, "allow_insecure_http"),
]


def test_invalid_platform_settings_answer_422_naming_the_field_and_record_nothing(
    shared_server: Server,
) -> None:
    good = {
        "type": "webhook",
        "base_url": "https://shop.example/ledger",
        "credentials": {"secret": random_secret()},
        "warehouses": {"main": "W1"},
    }
    assert put(shared_server, "checked", good).status_code == 200
    shown = get(shared_server, "/platforms/checked").json()
    head = shared_server.head()
    for what, change, field in INVALID:
        response = put(shared_server, "checked", {**good, **change})
        assert response.status_code == 422, (what, response.text)
        error = response.json()
        assert (error["error"], error["field"]) == ("invalid_input", field), what
        assert get(shared_server, "/platforms/checked").json() == shown, what
    not_an_object = put(shared_server, "checked", ["webhook"])
    assert not_an_object.status_code == 422
    assert put(shared_server, "fresh", {**good, "base_url": "ftp://x"}).status_code == 422
    assert get(shared_server, "/platforms/fresh").status_code == 404
    assert shared_server.head() == head  # not one event
    # Every view still runs: nothing they cannot store was recorded.
    assert httpx.get(f"{shared_server.url}/readyz", timeout=10).status_code == 200


def test_plain_http_is_taken_for_loopback_and_with_the_explicit_setting(
    shared_server: Server,
) -> None:
    body = {"type": "webhook", "base_url": "http://127.0.0.1:9/ledger"}
    assert put(shared_server, "local", body).status_code == 200
    lan = {"type": "webhook", "base_url": "http://erp.lan:8080/in", "allow_insecure_http": True}
    response = put(shared_server, "lan", lan)
    assert response.status_code == 200, response.text
    assert response.json()["allow_insecure_http"] is True


# -- nowhere but where they are needed ---------------------------------------------------------


def database_bytes(database_url: str) -> bytes:
    """Every byte the database holds for this ledger: the SQLite file and its WAL, or every
    table of the PostgreSQL schema (binary COPY: text and bytea as they are stored)."""
    database = parse_database_url(database_url)
    if not database.is_postgres:
        path = Path(database.sqlite_path)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    chunks = []
    with psycopg.connect(database.psycopg_conninfo()) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (database.schema,),
        ).fetchall()
        assert len(tables) > 10
        for (table,) in tables:
            query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(database.schema), sql.Identifier(table)
            )
            with conn.cursor().copy(query) as copy:
                chunks.extend(bytes(block) for block in copy)
    return b"".join(chunks)


def test_credentials_appear_in_no_table_response_status_metric_or_log_line(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    server = start_server(database_url, tmp_path)
    hook_secret, webhook_secret, rotated = random_secret(), random_secret(), random_secret()
    values = [vtex.app_key, vtex.app_token, hook_secret, webhook_secret, rotated]
    seen: list[str] = []
    try:
        credentials = {"app_key": vtex.app_key, "app_token": vtex.app_token}
        response = put(server, "vtex", vtex_body(vtex, {**credentials, "hook_secret": hook_secret}))
        assert response.status_code == 200, response.text
        seen.append(response.text)
        webhook = {"type": "webhook", "base_url": "http://127.0.0.1:9/in"}
        response = put(server, "shop", {**webhook, "credentials": {"secret": webhook_secret}})
        seen.append(response.text)
        with server.client() as client:
            move(client, "in-1", "SECRETLESS", 7)
        # The emulator answers 401 to anything but its own key and token.
        eventually(lambda: vtex.stock("SECRETLESS", "1_1") == 7, what="stock with the credentials")
        # A wrong token fails (401) and shows in the status: the failure must not carry it.
        response = put(server, "vtex", vtex_body(vtex, {"app_token": rotated}))
        seen.append(response.text)
        with server.client() as client:
            move(client, "in-2", "SECRETLESS", 1)
        eventually(
            lambda: get(server, "/platforms/vtex/status").json()["deliveries"]["failed"],
            what="the wrong token's failure is shown",
        )
        status = get(server, "/platforms/vtex/status").text
        assert "401" in status  # the failure is reported, without the token
        seen.append(status)
        for path in ("/platforms/vtex", "/platforms/shop", "/platforms/shop/status", "/metrics"):
            seen.append(get(server, path).text)
        running = database_bytes(database_url)  # SQLite: with its WAL, before a checkpoint
    finally:
        stop_server(server)
    stored = running + database_bytes(database_url)
    log = server.log.read_bytes()
    for value in values:
        assert value.encode() not in stored
        assert value.encode() not in log
        assert all(value not in text for text in seen)
    assert b"app_token" in stored  # the names are there, so the search looked at the right place


def test_sqlite_without_a_key_creates_a_key_file_for_its_owner_only_and_says_so(
    sqlite_url: str, tmp_path: Path
) -> None:
    server = start_server(sqlite_url, tmp_path)
    try:
        secret = random_secret()
        body = {"type": "webhook", "base_url": "http://127.0.0.1:9/in"}
        assert put(server, "shop", {**body, "credentials": {"secret": secret}}).status_code == 200
    finally:
        stop_server(server)
    key_file = Path(parse_database_url(sqlite_url).sqlite_path + ".key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    log = server.log.read_text()
    assert "created a secret key" in log
    assert str(key_file) in log
    assert key not in log
    again = start_server(sqlite_url, tmp_path)  # the same key, read back
    try:
        status = get(again, "/platforms/shop/status").json()
        assert status["configuration_problem"] is None
    finally:
        stop_server(again)
    assert "created a secret key" not in again.log.read_text()


def test_postgres_without_a_key_refuses_credentials_and_takes_the_rest(
    postgres_url: str, tmp_path: Path
) -> None:
    server = start_server(postgres_url, tmp_path, LEDGER_SECRET_KEY="")
    try:
        body = {"type": "webhook", "base_url": "https://shop.example/in"}
        head = server.head()
        refused = put(server, "shop", {**body, "credentials": {"secret": random_secret()}})
        assert refused.status_code == 422
        assert refused.json()["error"] == "secret_key_missing"
        assert "LEDGER_SECRET_KEY" in refused.json()["detail"]
        assert get(server, "/platforms/shop").status_code == 404
        assert server.head() == head
        taken = put(server, "shop", body)
        assert taken.status_code == 200, taken.text
        assert taken.json()["credentials"] == []
    finally:
        stop_server(server)


# -- the adapters use what is stored -------------------------------------------------------------


def test_vtex_gets_the_stored_credentials_and_a_rotated_one_resends_everything(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    server = start_server(database_url, tmp_path)
    hook = f"{server.url}/platforms/vtex/hook"
    first, second = random_secret(), random_secret()
    try:
        wrong = {
            "app_key": vtex.app_key,
            "app_token": "not-" + vtex.app_token,
            "hook_secret": first,
        }
        assert put(server, "vtex", vtex_body(vtex, wrong)).status_code == 200
        with server.client() as client:
            move(client, "in-1", "ROT", 5)
        failed = eventually(
            lambda: get(server, "/platforms/vtex/status").json()["deliveries"]["failed_deliveries"],
            what="the wrong token is refused (401)",
        )
        assert "401" in failed[0]["last_error"]
        # Only the token changes (the key is kept): the revision moves, everything is resent.
        fixed = put(server, "vtex", vtex_body(vtex, {"app_token": vtex.app_token}))
        assert fixed.json()["credentials"] == ["app_key", "app_token", "hook_secret"]
        eventually(lambda: vtex.stock("ROT", "1_1") == 5, what="sent with the right token")

        ping = {"hookConfig": "ping"}
        assert httpx.post(hook, json=ping).status_code == 200
        note = {"OrderId": "nope-01", "State": "payment-approved"}
        assert httpx.post(hook, json=note, headers={HOOK_HEADER: first}).status_code == 200
        assert put(server, "vtex", vtex_body(vtex, {"hook_secret": second})).status_code == 200
        refused = httpx.post(hook, json=note, headers={HOOK_HEADER: first})
        assert refused.status_code == 401
        assert httpx.post(hook, json=note, headers={HOOK_HEADER: second}).status_code == 200
        assert all(r["status"] != 400 for r in vtex.requests())
    finally:
        stop_server(server)


class SigningReceiver:
    """A webhook platform that checks each signature against the secret it holds now."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[dict[str, Any], bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                digest = hmac.new(receiver.secret.encode(), raw, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Ledger-Signature", "")
                receiver.received.append(
                    (json.loads(raw), hmac.compare_digest("sha256=" + digest, signature))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/in"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Ledger-Signature": signature, "Content-Type": "application/json"}


def test_the_webhook_signs_with_the_stored_secret_and_its_hook_checks_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    first, second = random_secret(), random_secret()
    receiver = SigningReceiver(first)
    server = start_server(sqlite_url, tmp_path)
    hook = f"{server.url}/platforms/shop/hook"
    body = {"type": "webhook", "base_url": receiver.url, "warehouses": {"main": "W1"}}
    try:
        assert put(server, "shop", {**body, "credentials": {"secret": first}}).status_code == 200
        with server.client() as client:
            move(client, "in-1", "SIG", 3)
        eventually(lambda: receiver.received, what="the stock arrives")
        assert all(ok for _, ok in receiver.received)

        receiver.secret = second
        count = len(receiver.received)
        assert put(server, "shop", {**body, "credentials": {"secret": second}}).status_code == 200
        # The secret's revision moved: the stock is sent again, signed with the new secret.
        eventually(lambda: len(receiver.received) > count, what="resent after the rotation")
        assert all(ok for _, ok in receiver.received[count:])

        order = {"order_id": "W-1", "status": "payment_confirmed", "items": []}
        raw, headers = signed(order, first)
        assert httpx.post(hook, content=raw, headers=headers).status_code == 401
        raw, headers = signed({**order, "items": [{"sku": "SIG", "quantity": "1"}]}, second)
        assert httpx.post(hook, content=raw, headers=headers).status_code == 200
    finally:
        stop_server(server)
        receiver.server.shutdown()


# -- a key that cannot decrypt ---------------------------------------------------------------------


def test_a_changed_key_shows_in_the_platforms_status_and_nothing_breaks(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    key = Fernet.generate_key().decode()
    before = start_server(database_url, tmp_path, LEDGER_SECRET_KEY=key)
    try:
        credentials = {"app_key": vtex.app_key, "app_token": vtex.app_token}
        assert put(before, "vtex", vtex_body(vtex, credentials)).status_code == 200
    finally:
        stop_server(before)
    # Without the background work: the status is the API's own reading of the credentials.
    after = start_server(
        database_url,
        tmp_path,
        LEDGER_SECRET_KEY=Fernet.generate_key().decode(),
        LEDGER_BACKGROUND="false",
    )
    try:
        status = get(after, "/platforms/vtex/status")
        assert status.status_code == 200, status.text
        problem = status.json()["configuration_problem"]
        assert "cannot be decrypted" in problem
        assert vtex.app_token not in status.text
        hook = httpx.post(f"{after.url}/platforms/vtex/hook", json={"OrderId": "1-01"})
        assert hook.status_code == 503
        assert hook.json()["error"] == "credentials_unavailable"
        # The hook takes no token: its caller learns nothing of where the key is kept.
        assert "key" not in hook.json()["detail"], hook.text
        assert str(tmp_path) not in hook.text
        assert get(after, "/platforms/vtex").json()["credentials"] == ["app_key", "app_token"]
        # Sending the credentials again under the new key repairs it.
        assert put(after, "vtex", vtex_body(vtex, credentials)).status_code == 200
        status = get(after, "/platforms/vtex/status").json()
        assert status["configuration_problem"] is None
    finally:
        stop_server(after)


def test_a_platform_whose_credentials_cannot_be_read_does_not_stop_another_platforms_stock(
    sqlite_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    before = start_server(sqlite_url, tmp_path, LEDGER_SECRET_KEY=Fernet.generate_key().decode())
    try:
        # Named to come first: the dispatcher meets it before the working one.
        body = {"type": "webhook", "base_url": "http://127.0.0.1:9/in", "warehouses": {"main": "W"}}
        assert put(before, "aaa", {**body, "credentials": {"secret": "s"}}).status_code == 200
    finally:
        stop_server(before)
    after = start_server(sqlite_url, tmp_path, LEDGER_SECRET_KEY=Fernet.generate_key().decode())
    try:
        credentials = {"app_key": vtex.app_key, "app_token": vtex.app_token}
        assert put(after, "vtex", vtex_body(vtex, credentials)).status_code == 200
        with after.client() as client:
            move(client, "in-1", "ISO", 4)
        eventually(lambda: vtex.stock("ISO", "1_1") == 4, what="the other platform's stock")
        problem = get(after, "/platforms/aaa/status").json()["configuration_problem"]
        assert "cannot be decrypted" in problem
    finally:
        stop_server(after)


# -- data written before credentials left the event log ------------------------------------------


def test_a_platform_configured_before_keeps_working_and_never_shows_its_credentials(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    hook_secret = random_secret()
    values = [vtex.app_key, vtex.app_token, hook_secret]
    key = TEST_SECRET_KEY if database_url.startswith("postgres") else None
    setup = build(Settings(database_url=database_url, secret_key=key))  # type: ignore[arg-type]
    try:
        old = legacy_settings(
            app_key=vtex.app_key, app_token=vtex.app_token, hook_secret=hook_secret
        )
        write_legacy_platform(setup, "vtex", {**old, **vtex_body(vtex)})
    finally:
        setup.close()
    server = start_server(database_url, tmp_path)
    seen = []
    try:
        shown = get(server, "/platforms/vtex")
        assert shown.json()["credentials"] == ["app_key", "app_token", "hook_secret"]
        seen.append(shown.text)
        with server.client() as client:
            move(client, "in-1", "OLD", 6)
        eventually(lambda: vtex.stock("OLD", "1_1") == 6, what="the old credentials still work")
        hook = f"{server.url}/platforms/vtex/hook"
        note = {"OrderId": "none-01", "State": "payment-approved"}
        assert httpx.post(hook, json=note, headers={HOOK_HEADER: hook_secret}).status_code == 200
        assert httpx.post(hook, json=note, headers={HOOK_HEADER: "guess"}).status_code == 401
        seen += [get(server, p).text for p in ("/platforms/vtex/status", "/metrics")]
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert "copied its credentials" in log
    assert "rotate them" in log
    for value in values:
        assert value not in log
        assert all(value not in text for text in seen)
