"""One family of errors for everything the ledger refuses.

Each error carries a machine-readable ``code``; the HTTP layer maps the family to status codes
in one place (``api/errors.py``), so the domain never knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    code = "ledger_error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class InvalidInput(LedgerError):
    code = "invalid_input"


class NotFound(LedgerError):
    code = "not_found"


class Conflict(LedgerError):
    code = "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class NameTaken(Conflict):
    code = "name_taken"


class SecretKeyMissing(InvalidInput):
    """Credentials were sent, but there is no key to encrypt them with (LEDGER_SECRET_KEY)."""

    code = "secret_key_missing"


class Busy(LedgerError):
    """Optimistic-concurrency retries ran out: the client may simply try again."""

    code = "busy"


class Unavailable(LedgerError):
    """Something the request needs cannot be used right now (not the client's fault)."""

    code = "unavailable"


class Unauthorized(LedgerError):
    code = "unauthorized"


class Forbidden(LedgerError):
    code = "forbidden"


class ViewLagging(LedgerError):
    code = "view_lagging"


class UnknownPosition(InvalidInput):
    """``?after=`` names a position the event store has not reached: no write returned it."""

    code = "unknown_position"


class BatchTooLarge(InvalidInput):
    code = "batch_too_large"


class InvalidSignature(Unauthorized):
    """A platform hook whose secret or signature does not match the platform's."""

    code = "invalid_signature"


class TooLarge(LedgerError):
    """What was sent is beyond a documented limit (413)."""

    code = "too_large"
