"""Secrets are blanked out of messages in every form a library writes a value in."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from adapters.scrubbing import scrub

SECRETS = [
    "plainTOKEN0123456789",
    "tok\nen-with-a-line-feed",
    "kéy-non-ascii-1234",
    'it\'s-a-"quoted"-one',
    "back\\slash-token",
    "sp ace+and/slash?&=",
]


def _inside_a_repr_that_escapes_single_quotes(secret: str) -> str:
    # With both quotes in a string, its repr escapes the single one: how the secret reads
    # inside a longer message (a dict's repr, an exception's args).
    shown = repr("\"'" + secret)[1:-1]
    return shown[len("\"\\'") :]


FORMS = {
    "raw": lambda s: s,
    "bytes-repr": lambda s: repr(s.encode())[2:-1],
    "str-repr": lambda s: repr(s)[1:-1],
    "repr-escaping-quotes": _inside_a_repr_that_escapes_single_quotes,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "url": lambda s: quote(s, safe=""),
    "url-path": lambda s: quote(s),
    "unicode-escape": lambda s: s.encode("unicode_escape").decode(),
}


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_a_secret_is_blanked_out(secret: str, form: str) -> None:
    written = FORMS[form](secret)
    message = f"failed <{written}> (HTTP 401)"
    assert scrub(message, [secret, "other-secret"]) == "failed <***> (HTTP 401)"


def test_text_without_secrets_is_left_alone() -> None:
    assert scrub("HTTP 503 upstream busy", ["s3cret-value", ""]) == "HTTP 503 upstream busy"
