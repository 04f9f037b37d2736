"""People's passwords and roles, and the console's language and chart: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from api.console.chart import Point, step_chart
from api.console.i18n import MESSAGES, pick_language, translator
from ledger.errors import InvalidInput
from ledger.users import (
    MAX_PASSWORD,
    User,
    check_password,
    check_role,
    hash_password,
    password_matches,
)


def test_a_password_is_kept_only_as_an_argon2id_hash_that_verifies() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert password_matches(stored, "correct horse")
    assert not password_matches(stored, "correct horsE")
    assert not password_matches(None, "correct horse")  # an unknown name never matches
    assert not password_matches("not a hash", "correct horse")
    assert not password_matches(stored, "x" * (MAX_PASSWORD + 1))


@pytest.mark.parametrize("password", ["", "short", "x" * (MAX_PASSWORD + 1), None, 12345678])
def test_a_password_too_short_too_long_or_not_text_is_refused(password: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password(password)
    assert refused.value.context["field"] == "password"


def test_roles_are_the_tokens_permissions() -> None:
    assert [check_role(r).value for r in ("read", "write", "admin")] == ["read", "write", "admin"]
    with pytest.raises(InvalidInput):
        check_role("owner")


def test_a_disabled_user_stays_with_its_name_and_role() -> None:
    user = User(
        name="ana",
        role="write",
        password_hash=hash_password("12345678"),
        created_by="admin",
        created_at=datetime.now(UTC),
    )
    assert user.is_active
    assert [p.value for p in user.permissions] == ["write"]
    user.disable(disabled_by="admin", disabled_at=datetime.now(UTC))
    assert not user.is_active
    assert user.name == "ana"


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, "pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),
        (None, "pt", "pt-BR"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "en;q=0.4,pt-BR;q=0.8", "pt-BR"),
        (None, "fr-FR,de", "en"),
        (None, None, "en"),
        (None, "pt;q=nonsense,en", "en"),
        ("en", "pt-BR", "en"),
        ("pt-BR", "en", "pt-BR"),
        ("xx", "pt-BR", "pt-BR"),
    ],
)
def test_the_language_is_the_switchs_or_the_browsers(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert pick_language(cookie, header) == expected


def test_every_message_has_both_languages() -> None:
    assert set(MESSAGES["en"]) == set(MESSAGES["pt-BR"])
    assert translator("pt-BR")("stock") == "Estoque"
    assert translator("en")(
        "recorded", sku="A", warehouse="main", physical="5", available="4"
    ).startswith("Recorded: A")


def test_the_chart_steps_through_the_seeds_example_and_escapes_its_labels() -> None:
    points = [
        Point("receive", Decimal(10), Decimal(10)),
        Point("<order>", Decimal(10), Decimal(5)),
        Point("invoice", Decimal(5), Decimal(5)),
    ]
    svg = str(step_chart(points, title="Stock & more", physical="Physical", available="Available"))
    assert 'data-physical="10 10 5"' in svg
    assert 'data-available="10 5 5"' in svg
    assert "<order>" not in svg
    assert "&lt;order&gt;" in svg
    assert "Stock &amp; more" in svg
    assert str(step_chart([], title="t", physical="p", available="a")) == ""
