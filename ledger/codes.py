"""Text that people and platforms type (codes, names, references, notes): checked once, here.

Codes (SKU, warehouse, movement id, order id, invoice number, platform name and the platform's
own ids) name things, may end up as one segment of a platform's URL, and are stored by every
view: no control character (PostgreSQL's text cannot even hold NUL), no surrounding white space,
and never ``.`` or ``..``, which a URL resolves as "this" or "the parent" resource.
"""

from __future__ import annotations

import re
from typing import Any

from ledger.errors import InvalidInput

MAX_CODE_LENGTH = 64
MAX_TEXT_LENGTH = 500
_DOT_SEGMENTS = frozenset({".", ".."})


def check_code(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} is required and must be a non-empty string", field=field)
    if len(value) > MAX_CODE_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_CODE_LENGTH} characters", field=field)
    if value != value.strip():
        raise InvalidInput(f"{field} must not start or end with white space", field=field)
    if _has_control_characters(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    if value in _DOT_SEGMENTS:
        raise InvalidInput(f"{field} cannot be {value!r}", field=field)
    return value


def check_object(body: object, allowed: set[str]) -> dict[str, Any]:
    """A JSON object holding no field but ``allowed`` ones."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        first = sorted(unknown)[0]
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}", field=first)
    return body


def check_text(
    value: object, field: str, *, max_length: int = MAX_TEXT_LENGTH, multiline: bool = False
) -> str | None:
    """Optional free text, bounded and printable. Only ``multiline`` text (a note, a
    reference) may hold line feeds and tabs; a name or a key is one line."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field=field)
    checked = value.replace("\n", "").replace("\t", "") if multiline else value
    if _has_control_characters(checked):
        allowed = " other than line feeds and tabs" if multiline else ""
        raise InvalidInput(f"{field} must not contain control characters{allowed}", field=field)
    return value or None


# Exactly Unicode's categories Cc (C0, DEL, C1 controls) and Cs (surrogates); a regex scans a
# code in well under a microsecond, where unicodedata.category per character took several.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None
