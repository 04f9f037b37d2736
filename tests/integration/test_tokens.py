from __future__ import annotations

import pytest

from api.wiring import Container
from ledger.errors import NameTaken, NotFound
from ledger.tokens import Permission


def test_a_token_authenticates_until_revoked(container: Container) -> None:
    secret = container.app.issue_token("bot", [Permission.WRITE], issued_by="admin")
    principal = container.app.authenticate(secret)
    assert principal is not None
    assert (principal.name, principal.permissions) == ("bot", frozenset({Permission.WRITE}))
    container.app.revoke_token("bot", revoked_by="admin")
    assert container.app.authenticate(secret) is None
    assert [t.revoked_at is not None for t in container.app.list_tokens()] == [True]


def test_token_names_are_unique_and_secrets_are_not_stored(container: Container) -> None:
    secret = container.app.issue_token("bot", [Permission.READ], issued_by="admin")
    with pytest.raises(NameTaken):
        container.app.issue_token("bot", [Permission.ADMIN], issued_by="admin")
    stored = container.app.recorder.select_notifications(start=1, limit=100)
    assert all(secret.encode() not in n.state for n in stored)
    assert container.app.authenticate("lt_not-a-token") is None


def test_revoking_an_unknown_token_is_not_found(container: Container) -> None:
    with pytest.raises(NotFound):
        container.app.revoke_token("nobody", revoked_by="admin")
