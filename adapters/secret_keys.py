"""The key that encrypts platform credentials at rest: ``LEDGER_SECRET_KEY``, or a key file.

- ``LEDGER_SECRET_KEY`` holds one or more Fernet keys, comma-separated. The first encrypts and
  every one decrypts (``cryptography``'s ``MultiFernet``), so a key is rotated by putting the
  new one first and keeping the old one after it until the ledger has re-encrypted what it
  stores under the new one, which it does at every start.
- Without it, on SQLite, the ledger creates a key file beside the database (``<db>.key``,
  readable by its owner only) once, says so in its log (never the key), and uses it from then
  on: a single-machine ledger keeps credentials encrypted with nothing to set up, and a copy of
  the database file alone does not reveal them. The file is written whole under a temporary
  name and then linked into place, which fails if another process got there first: two
  processes starting together agree on one key and never read a half-written one.
- Without it, on PostgreSQL, there is no key: the database serves processes on several
  machines, which one machine's file cannot, and a PUT that carries credentials is refused
  (``secret_key_missing``).
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from adapters.database import Database

log = logging.getLogger(__name__)

ENV_NAME = "LEDGER_SECRET_KEY"


class SecretKeyInvalid(ValueError):
    """A configured key that is not a Fernet key; the message never contains the key."""


@dataclass(frozen=True)
class SecretKeys:
    primary: Fernet  # encrypts
    cipher: MultiFernet  # decrypts with any key
    count: int  # more than one: the later ones only decrypt (a rotation in progress)
    source: str  # where the keys came from, for messages: the setting's name or the file


def generate_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(text: str, source: str) -> SecretKeys:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise SecretKeyInvalid(f"{source} holds no key")
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise SecretKeyInvalid(
                f"{source}: key {number} of {len(keys)} is not a Fernet key (32 bytes in "
                "URL-safe base64; generate one with `ledger secret-key`)"
            ) from None
    return SecretKeys(fernets[0], MultiFernet(fernets), len(fernets), source)


def load_keys(configured: str | None, database: Database) -> SecretKeys | None:
    """The keys to use, or None (PostgreSQL without ``LEDGER_SECRET_KEY``)."""
    if configured and configured.strip():
        return parse_keys(configured, ENV_NAME)
    if database.is_postgres:
        log.warning(
            "%s is not set: platform credentials cannot be stored (PUT /platforms with "
            "credentials answers secret_key_missing)",
            ENV_NAME,
        )
        return None
    if database.sqlite_path == ":memory:":
        # Nothing outlives the process, the key included.
        return parse_keys(generate_key(), "an in-memory key")
    path = key_file_of(database)
    return parse_keys(_key_file(path), f"the key file {path}")


def key_file_of(database: Database) -> Path:
    """Where a SQLite ledger keeps its key when ``LEDGER_SECRET_KEY`` is not set."""
    return Path(f"{database.sqlite_path}.key").expanduser().resolve()


def _key_file(path: Path) -> str:
    if not path.exists():
        _create(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the secret key file %s can be read by others than its owner: chmod 600 it", path
        )
    return path.read_text()


def _create(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    # 0600 from the start: the key is never readable by others, not even for a moment.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process created it first: theirs is the key
    finally:
        temporary.unlink(missing_ok=True)
    log.warning(
        "%s is not set: created a secret key for platform credentials in %s (readable by its "
        "owner only). Keep it with the database's backups: without it, stored credentials "
        "cannot be read.",
        ENV_NAME,
        path,
    )
