"""Opaque page cursors: what a page ended on, in URL-safe base64, checked when it comes back."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from ledger.errors import InvalidInput

MAX_POSITION = 2**63 - 1
# A header naming a position: an answer without a body (DELETE) and the console's live parts.
POSITION_HEADER = "X-Ledger-Position"


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
    if not value:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return value


def encode_position(position: int) -> str:
    return encode_cursor(f"p{position}")


def decode_position(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not value.startswith("p"):
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return _position(value[1:])


def _position(digits: str) -> int:
    # ASCII digits only ("²".isdigit() is true), and within a BIGINT.
    if not (digits.isascii() and digits.isdigit()) or int(digits) > MAX_POSITION:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return int(digits)


def encode_moment_and_position(moment: datetime, position: int) -> str:
    return encode_cursor(f"t{position}|{moment.isoformat()}")


def decode_moment_and_position(cursor: str | None) -> tuple[datetime, int] | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    position, _, moment = value[1:].partition("|")
    if not value.startswith("t") or len(position) > 19:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    try:
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError(moment)
        at.astimezone(UTC)  # out of range once in UTC: OverflowError
    except (ValueError, OverflowError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
    return at, _position(position)
