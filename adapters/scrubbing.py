"""Secrets blanked out of text that leaves an adapter: error messages, log lines, the last error
a delivery keeps (which any read token sees in the platform's status).

A library's message can hold a secret in any of the forms it writes a value in: as it is, as
Python's ``repr`` of the string or of its bytes (h11 and httpx say ``Illegal header value
b'...'``), with either quote escaped, JSON-escaped, or percent-encoded in a URL. Every one of
those forms is replaced, longest first, so a shorter form cannot leave the rest of a longer
one behind. Credentials are checked to be printable ASCII without white space at PUT, which
makes most of these forms equal to the value; older stored values may still hold anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


def forms(secret: str) -> set[str]:
    """The ways ``secret`` may be written inside a message."""
    if not secret:
        return set()
    escaped = repr(secret)[1:-1]  # str's repr without its quotes
    ascii_escaped = secret.encode("unicode_escape").decode("ascii")
    found = {
        secret,
        escaped,
        ascii_escaped,
        repr(secret.encode("utf-8", "surrogatepass"))[2:-1],  # bytes' repr
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),  # in a URL's path, where "/" stays as it is
        quote_plus(secret, safe=""),
    }
    for form in (escaped, ascii_escaped):
        # Inside a longer string the repr escapes whichever quote encloses it.
        found.add(form.replace("'", "\\'"))
        found.add(form.replace('"', '\\"'))
    return {f for f in found if f}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    every = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
    for form in every:
        text = text.replace(form, MASK)
    return text
