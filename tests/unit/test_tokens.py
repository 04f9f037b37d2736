"""Token permissions and hashing, with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.tokens import ApiToken, Permission, grants, hash_secret


def test_write_includes_read_and_admin_includes_everything() -> None:
    assert grants({Permission.WRITE}, Permission.READ)
    assert not grants({Permission.READ}, Permission.WRITE)
    assert not grants({Permission.WRITE}, Permission.ADMIN)
    assert all(grants({Permission.ADMIN}, p) for p in Permission)


def test_a_token_keeps_only_the_hash_of_its_secret() -> None:
    token = ApiToken(
        token_hash=hash_secret("s3cret"),
        name="bot",
        permissions=["read"],
        issued_by="admin",
        issued_at=datetime.now(UTC),
    )
    state = repr(token.__dict__) + repr(token.collect_events())
    assert "s3cret" not in state
    assert token.is_active


def test_a_revoked_token_is_inactive() -> None:
    token = ApiToken(
        token_hash="h",
        name="bot",
        permissions=["read"],
        issued_by="admin",
        issued_at=datetime.now(UTC),
    )
    token.revoke(revoked_by="admin", revoked_at=datetime.now(UTC))
    assert not token.is_active
