"""Bad input over HTTP: a clear 4xx with a code, nothing recorded, and the server keeps serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

GOOD = {"movement_id": "good-1", "sku": "SKU-1", "kind": "purchase_order", "quantity": "10"}


def body(**changes: Any) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def raw(text: str) -> str:
    return text


CASES: list[tuple[str, str, str, int, str]] = [
    # (name, path, body, status, error code)
    ("unknown kind", "/movements", body(kind="gift"), 422, "invalid_input"),
    ("missing sku", "/movements", body(sku=...), 422, "invalid_input"),
    ("empty sku", "/movements", body(sku=""), 422, "invalid_input"),
    ("empty warehouse", "/movements", body(warehouse=""), 422, "invalid_input"),
    ("missing movement_id", "/movements", body(movement_id=...), 422, "invalid_input"),
    ("empty movement_id", "/movements", body(movement_id=""), 422, "invalid_input"),
    ("sku of 65 characters", "/movements", body(sku="S" * 65), 422, "invalid_input"),
    ("warehouse of 65 characters", "/movements", body(warehouse="W" * 65), 422, "invalid_input"),
    (
        "movement_id of 65 characters",
        "/movements",
        body(movement_id="M" * 65),
        422,
        "invalid_input",
    ),
    ("control character in sku", "/movements", body(sku="A\u0007B"), 422, "invalid_input"),
    ("NUL in warehouse", "/movements", body(warehouse="m\u0000ain"), 422, "invalid_input"),
    ("quantity not a number", "/movements", body(quantity="lots"), 422, "invalid_input"),
    ("quantity as a list", "/movements", body(quantity=[1]), 422, "invalid_input"),
    ("quantity as a boolean", "/movements", body(quantity=True), 422, "invalid_input"),
    ("quantity NaN string", "/movements", body(quantity="NaN"), 422, "invalid_input"),
    ("quantity Infinity string", "/movements", body(quantity="Infinity"), 422, "invalid_input"),
    (
        "quantity NaN literal",
        "/movements",
        raw('{"movement_id":"x","sku":"A","kind":"manual","quantity":NaN}'),
        400,
        "invalid_json",
    ),
    (
        "quantity Infinity literal",
        "/movements",
        raw('{"movement_id":"x","sku":"A","kind":"manual","quantity":-Infinity}'),
        400,
        "invalid_json",
    ),
    (
        "seven decimal places",
        "/movements",
        raw('{"movement_id":"x","sku":"A","kind":"manual","quantity":1.0000001}'),
        422,
        "invalid_input",
    ),
    (
        "absurdly large",
        "/movements",
        raw('{"movement_id":"x","sku":"A","kind":"manual","quantity":1e300}'),
        422,
        "invalid_input",
    ),
    ("absurdly large integer", "/movements", body(quantity=10**40), 422, "invalid_input"),
    ("zero change", "/movements", body(quantity="0"), 422, "invalid_input"),
    (
        "negative inventory count",
        "/movements",
        body(kind="inventory_count", quantity="-1"),
        422,
        "invalid_input",
    ),
    (
        "naive occurred_at",
        "/movements",
        body(occurred_at="2026-11-28T10:00:00"),
        422,
        "invalid_input",
    ),
    ("unknown field", "/movements", body(colour="red"), 422, "invalid_input"),
    ("invalid JSON", "/movements", raw('{"movement_id": "x", '), 400, "invalid_json"),
    ("not an object", "/movements", raw("[1, 2, 3]"), 422, "invalid_input"),
    ("deeply nested", "/movements", raw("[" * 100_000 + "]" * 100_000), 413, "body_too_large"),
    ("empty batch", "/movements/batch", raw('{"movements": []}'), 422, "invalid_input"),
    ("batch without movements", "/movements/batch", raw("{}"), 422, "invalid_input"),
    (
        "batch with one invalid row",
        "/movements/batch",
        json.dumps(
            {"movements": [GOOD, {**GOOD, "movement_id": "good-2", "quantity": "1.0000001"}]}
        ),
        422,
        "invalid_input",
    ),
    (
        "batch repeating a movement_id",
        "/movements/batch",
        json.dumps({"movements": [GOOD, GOOD]}),
        422,
        "invalid_input",
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "payload", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_movements_are_refused_and_change_nothing(
    shared_server: Server, name: str, path: str, payload: str, status: int, code: str
) -> None:
    server = shared_server
    with server.client() as client:
        before = server.head()
        response = client.post(path, content=payload, headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
        error = response.json()
        assert error["error"] == code
        assert isinstance(error["detail"], str)
        assert error["detail"]
        assert server.head() == before
        # ... and the server still serves.
        assert client.post("/movements", json=GOOD).status_code in (200, 201)


def test_many_bad_requests_in_one_session(shared_server: Server) -> None:
    server = shared_server
    """All the cases over one keep-alive connection: the server never falls over."""
    with server.client() as client:
        before = server.head()
        for _, path, payload, status, _ in CASES:
            response = client.post(
                path, content=payload, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == status
        assert server.head() == before


def test_a_body_of_several_megabytes_is_refused(shared_server: Server) -> None:
    server = shared_server
    before = server.head()
    with server.client() as client:
        payload = body(note="n" * (5 * 1024 * 1024))
        response = client.post(
            "/movements", content=payload, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
    assert server.head() == before


def test_a_streamed_body_without_length_is_cut_off_too(shared_server: Server) -> None:
    server = shared_server

    def chunks():
        yield b'{"movement_id": "x", "sku": "A", "kind": "manual", "quantity": 1, "note": "'
        for _ in range(200):
            yield b"n" * 65536
        yield b'"}'

    before = server.head()
    with server.client() as client:
        response = client.post(
            "/movements", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
    assert server.head() == before


def test_the_wrong_content_type_is_refused(shared_server: Server) -> None:
    server = shared_server
    before = server.head()
    with server.client() as client:
        response = client.post("/movements", content=body(), headers={"Content-Type": "text/plain"})
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"
        form = client.post("/movements", data={"sku": "A"})
        assert form.status_code == 415
        batch = client.post(
            "/movements/batch",
            content=json.dumps({"movements": [json.loads(body())]}),
            headers={"Content-Type": "text/plain"},
        )
        assert batch.status_code == 415
        assert batch.json()["error"] == "unsupported_media_type"
    assert server.head() == before


def test_a_batch_over_the_limit_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    server = start_server(sqlite_url, tmp_path, LEDGER_MAX_BATCH="3")
    try:
        rows = [{**GOOD, "movement_id": f"m{n}"} for n in range(4)]
        with server.client() as client:
            response = client.post("/movements/batch", json={"movements": rows})
            assert response.status_code == 422
            assert response.json()["error"] == "batch_too_large"
            assert client.post("/movements/batch", json={"movements": rows[:3]}).status_code == 201
    finally:
        stop_server(server)


def test_unknown_query_values_are_refused(shared_server: Server) -> None:
    server = shared_server
    with server.client() as client:
        assert client.get("/stock", params={"limit": "0"}).status_code == 422
        assert client.get("/stock", params={"limit": "many"}).status_code == 422
        assert client.get("/stock", params={"cursor": "!!!"}).json()["error"] == "invalid_input"
        assert client.get("/stock/A", params={"after": "-1"}).status_code == 422
        assert client.get("/nowhere").json()["error"] == "not_found"
        assert client.put("/movements", json={}).status_code == 405


def test_a_client_that_hangs_up_mid_body_changes_nothing(shared_server: Server) -> None:
    server = shared_server
    import socket
    from urllib.parse import urlsplit

    before = server.head()
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            b"POST /movements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {server.admin_token}\r\n".encode()
            + b"Content-Length: 500\r\n\r\n"
            + body().encode()[:40]
        )
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert server.head() == before
