"""Opaque page cursors: what a page ended on, in URL-safe base64, checked when it comes back."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from ledger.errors import InvalidInput


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
    if not value.startswith("p") or not value[1:].isdigit() or len(value) > 20:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return int(value[1:])


def encode_moment_and_position(moment: datetime, position: int) -> str:
    return encode_cursor(f"t{position}|{moment.isoformat()}")


def decode_moment_and_position(cursor: str | None) -> tuple[datetime, int] | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    position, _, moment = value[1:].partition("|")
    try:
        if not value.startswith("t") or not position.isdigit() or len(position) > 19:
            raise ValueError(value)
        return datetime.fromisoformat(moment), int(position)
    except ValueError:
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
