""".env.example gives every setting, with its default: a new setting cannot be left out."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr

from api.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
LINE = re.compile(r"^(# )?(LEDGER_[A-Z0-9_]+)=(.*)$")


def test_every_setting_is_in_the_example_with_its_default() -> None:
    given = {}
    for line in EXAMPLE.read_text().splitlines():
        if match := LINE.match(line):
            given[match.group(2)] = (match.group(1) is not None, match.group(3))
    fields = Settings.model_fields
    assert set(given) == {f"LEDGER_{name.upper()}" for name in fields}
    for name, field in fields.items():
        commented, value = given[f"LEDGER_{name.upper()}"]
        if field.default is None:
            assert commented, f"{name} has no default: its line is a comment"
            continue
        assert not commented, name
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        expected = str(default).lower() if isinstance(default, bool) else str(default)
        assert value == expected, (name, value, expected)


def test_the_example_parses_as_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("LEDGER_"):
            monkeypatch.delenv(key)
    (tmp_path / ".env").write_text(EXAMPLE.read_text())
    assert Settings() == Settings(_env_file=None)
