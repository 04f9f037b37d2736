"""What people type into the console's forms, as the ledger reads it."""

from __future__ import annotations


def decimal_text(value: str) -> str:
    """A quantity as typed: Brazilian sellers write 1,5, and 1.234,5 with a thousands dot."""
    value = value.strip()
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    return value
