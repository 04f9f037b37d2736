"""LEDGER_DATABASE_URL becomes separate connection values: whatever a password holds, it stays
a password (it can neither break start-up nor point a connection elsewhere)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from adapters.database import parse_database_url

AWKWARD = 'p w\'d=x host=elsewhere \\ "q" @:/?#%'


def test_a_password_with_spaces_quotes_and_equals_signs_is_one_value() -> None:
    url = f"postgresql://ledger:{quote(AWKWARD, safe='')}@db.example:6543/stock?schema=s1"
    database = parse_database_url(url)
    parameters = conninfo_to_dict(database.psycopg_conninfo())
    assert parameters == {
        "host": "db.example",
        "port": "6543",
        "dbname": "stock",
        "user": "ledger",
        "password": AWKWARD,
    }
    assert database.env["POSTGRES_PASSWORD"] == AWKWARD
    assert database.schema == "s1"


def test_a_socket_folder_as_host_is_decoded_and_keeps_its_case() -> None:
    database = parse_database_url("postgresql://me@%2Fvar%2Frun%2FPG/db")
    assert database.env["POSTGRES_HOST"] == "/var/run/PG"
    assert database.env["POSTGRES_PORT"] == "5432"


def test_ipv6_hosts_and_default_ports() -> None:
    assert parse_database_url("postgresql://me@[::1]:5433/db").env["POSTGRES_HOST"] == "::1"
    database = parse_database_url("postgresql://me@[::1]/db")
    assert (database.env["POSTGRES_HOST"], database.env["POSTGRES_PORT"]) == ("::1", "5432")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://me@host/db",
        "postgresql://me@host:port/db",
        "postgresql://me@host/db?schema=Robert');DROP",
        "sqlite://",
    ],
)
def test_urls_it_cannot_use_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_database_url(url)


def test_a_refused_url_never_shows_its_password() -> None:
    for url in ("mysql://me:s3cr3t-pw@host/db", "postgresql://me:s3cr3t-pw@host:port/db"):
        with pytest.raises(ValueError, match="database URL") as refused:
            parse_database_url(url)
        assert "s3cr3t-pw" not in str(refused.value), url


def test_a_database_never_shows_its_password_in_its_repr() -> None:
    database = parse_database_url("postgresql://me:s3cr3t-pw@host/db")
    assert database.env["POSTGRES_PASSWORD"] == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(database)
