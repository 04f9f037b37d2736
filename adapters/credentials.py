"""Platform credentials, encrypted at rest, outside the event log: the ``platform_credentials``
table, read and written through the event store's own datastore (its connections, its schema).

What holds, and why:

- **Only ciphertext is stored**: a Fernet token (AES-CBC with an HMAC, ``cryptography``) under
  ``LEDGER_SECRET_KEY`` (``adapters/secret_keys.py``). The token's plaintext names the platform
  and the credential too, and a value is only used where both match: a token copied into
  another row fails to decrypt instead of handing one platform's secret to another's URL.
- **A row is overwritten or deleted, never appended to**: rotating a credential erases the old
  value, which an event log can never do. On SQLite the write runs with ``secure_delete``, so
  the bytes it frees are zeroed; an older copy of the page may stay in the WAL until the next
  checkpoint. On PostgreSQL the old row version stays until vacuum reclaims it. Either way
  what lingers is ciphertext, and a backup keeps what it was given.
- **Which write comes first.** A PUT writes here first and records its event second
  (``OrderDesk.configure``): a crash between the two leaves new values under an old event,
  which only delays using them until the next PUT or a restart; the other order could record
  an event naming a credential that was never stored. Each row keeps the revision it was
  written for, so the next PUT sees a write whose event is missing and records it.
- **Reading never breaks a caller's loop with something unexpected.** Whatever keeps a
  platform's credentials from being used (no key, a key that cannot decrypt them, a value
  unfit for an HTTP header) raises ``CredentialsUnavailable`` for that platform alone, naming
  the platform and the credential, never a value. The dispatcher and the robots isolate a
  platform on it, and its status says why.
- **Credentials of before this table** live in ``Platform`` events (``ledger/platforms.py``).
  On first use they are copied here if the table holds none for that platform, and the
  events' values are ignored from then on. Without a key they keep working from the events,
  and the log says to set one.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from cryptography.fernet import InvalidToken

from adapters.secret_keys import SecretKeys
from ledger.errors import InvalidInput, SecretKeyMissing, Unavailable
from ledger.platform_settings import check_credential_value
from ledger.platforms import WITHOUT_A_KEY_MESSAGE, Platform

log = logging.getLogger(__name__)

TABLE = "platform_credentials"


class CredentialsUnavailable(Unavailable):
    """A platform's credentials cannot be used: its adapter cannot be built, and its status
    says why. Raised for one platform; every other platform carries on."""

    code = "credentials_unavailable"


class CredentialStore:
    """The ledger's ``CredentialVault`` (``ledger/platforms.py``), and what adapters read."""

    def __init__(self, datastore: Any, is_postgres: bool, keys: SecretKeys | None) -> None:
        self.datastore = datastore
        self.is_postgres = is_postgres
        self.keys = keys
        self._warned: set[str] = set()

    # -- the vault (PUT /platforms) ----------------------------------------------------------

    @property
    def can_encrypt(self) -> bool:
        return self.keys is not None

    def held(self, name: str, platform: Platform | None) -> dict[str, int]:
        rows = self._rows(name)
        if not rows and platform is not None and platform.legacy_credentials:
            if not self._adopt(platform):
                # Without a key they stay where they are and count as held, unchanged.
                return dict.fromkeys(platform.legacy_credentials, platform.credentials_revision)
            rows = self._rows(name)
        return {n: revision for n, (_, revision) in rows.items()}

    def holds(self, platform: str, name: str, value: str) -> bool:
        row = self._rows(platform).get(name)
        if row is None or self.keys is None:
            return False
        try:
            stored = self._decrypt(platform, name, row[0])
        except CredentialsUnavailable:
            return False
        return hmac.compare_digest(stored.encode(), value.encode())

    def write(
        self, platform: str, values: Mapping[str, str], deleted: Collection[str], revision: int
    ) -> None:
        if self.keys is None:
            raise SecretKeyMissing(WITHOUT_A_KEY_MESSAGE, field="credentials")
        rows = [
            (platform, name, self._encrypt(platform, name, value), revision)
            for name, value in values.items()
        ]
        with self._tx(write=True, erasing=True) as c:
            if rows:
                c.executemany(
                    self.q(
                        "INSERT INTO {t} (platform, name, ciphertext, revision) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (platform, name) DO UPDATE SET "
                        "ciphertext = excluded.ciphertext, revision = excluded.revision"
                    ),
                    rows,
                )
            for name in deleted:
                c.execute(
                    self.q("DELETE FROM {t} WHERE platform = ? AND name = ?"),
                    (platform, name),
                )

    # -- adapters ----------------------------------------------------------------------------

    def read(self, platform: Platform) -> dict[str, str]:
        """The platform's credentials, to use now; raises ``CredentialsUnavailable``."""
        rows = self._rows(platform.name)
        if not rows and platform.legacy_credentials:
            if not self._adopt(platform) and platform.name not in self._warned:
                self._warned.add(platform.name)
                log.warning(
                    "platform %s: its credentials are still read from the event log; set "
                    "LEDGER_SECRET_KEY so they move to encrypted storage, then rotate them "
                    "at the platform",
                    platform.name,
                )
            values = dict(platform.legacy_credentials)
        else:
            if rows and self.keys is None:
                raise CredentialsUnavailable(
                    f"platform {platform.name}: its credentials are stored encrypted and "
                    "LEDGER_SECRET_KEY is not set",
                    platform=platform.name,
                )
            values = {n: self._decrypt(platform.name, n, token) for n, (token, _) in rows.items()}
        for name, value in values.items():
            try:
                check_credential_value(value, name)
            except InvalidInput:
                raise CredentialsUnavailable(
                    f"platform {platform.name}: credential {name} is not printable ASCII "
                    "without white space; set it again with PUT /platforms/"
                    f"{platform.name}",
                    platform=platform.name,
                ) from None
        return values

    def problem(self, platform: Platform) -> str | None:
        """Why the platform's credentials cannot be used, or None."""
        try:
            self.read(platform)
        except CredentialsUnavailable as error:
            return error.detail
        return None

    def rekey(self) -> int:
        """Re-encrypt under the first key every value that only a later key opens (a key
        rotation); returns how many. Safe to run from several processes at once."""
        if self.keys is None or self.keys.count == 1:
            return 0
        with self._tx() as c:
            c.execute(self.q("SELECT platform, name, ciphertext FROM {t}"))
            rows = [(r["platform"], r["name"], r["ciphertext"]) for r in c.fetchall()]
        changed, unreadable = [], []
        for platform, name, token in rows:
            try:
                self.keys.primary.decrypt(token.encode())
                continue
            except InvalidToken:
                pass
            try:
                fresh = self.keys.cipher.rotate(token.encode()).decode()
            except InvalidToken:
                unreadable.append(f"{platform}.{name}")
                continue
            changed.append((fresh, platform, name, token))
        if changed:
            with self._tx(write=True, erasing=True) as c:
                # Only where the value is still the one read: a PUT meanwhile wins.
                c.executemany(
                    self.q(
                        "UPDATE {t} SET ciphertext = ? "
                        "WHERE platform = ? AND name = ? AND ciphertext = ?"
                    ),
                    changed,
                )
            log.info("re-encrypted %d credential(s) under the first secret key", len(changed))
        if unreadable:
            log.warning(
                "no secret key opens these stored credentials: %s; set them again with "
                "PUT /platforms/{name}",
                ", ".join(unreadable),
            )
        return len(changed)

    # -- plumbing ----------------------------------------------------------------------------

    def _adopt(self, platform: Platform) -> bool:
        """Copy a platform's legacy credentials here, unless some are stored already. False
        when there is no key to encrypt them with."""
        legacy = platform.legacy_credentials
        if not legacy or self.keys is None:
            return False
        rows = [
            (platform.name, n, self._encrypt(platform.name, n, v), platform.credentials_revision)
            for n, v in legacy.items()
        ]
        values = ", ".join("(?, ?, ?, ?)" for _ in rows)
        with self._tx(write=True) as c:
            # One statement, its condition read before any of its rows is written: a write
            # transaction that read first could be refused by SQLite once another process
            # has written meanwhile.
            c.execute(
                self.q(
                    "INSERT INTO {t} (platform, name, ciphertext, revision) "
                    f"SELECT * FROM (VALUES {values}) AS copied "
                    "WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE platform = ?) "
                    "ON CONFLICT (platform, name) DO NOTHING"
                ),
                [*(field for row in rows for field in row), platform.name],
            )
            if not c.rowcount:
                return True  # another process was first, or a PUT stored newer ones
        log.warning(
            "platform %s: copied its credentials (%s) from the event log into encrypted "
            "storage; the old events still hold them: rotate them at the platform",
            platform.name,
            ", ".join(sorted(legacy)),
        )
        return True

    def _rows(self, platform: str) -> dict[str, tuple[str, int]]:
        with self._tx() as c:
            c.execute(
                self.q("SELECT name, ciphertext, revision FROM {t} WHERE platform = ?"),
                (platform,),
            )
            return {r["name"]: (r["ciphertext"], int(r["revision"])) for r in c.fetchall()}

    def _encrypt(self, platform: str, name: str, value: str) -> str:
        assert self.keys is not None
        plaintext = json.dumps({"platform": platform, "name": name, "value": value})
        return self.keys.cipher.encrypt(plaintext.encode()).decode()

    def _decrypt(self, platform: str, name: str, token: str) -> str:
        assert self.keys is not None
        try:
            opened = json.loads(self.keys.cipher.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise CredentialsUnavailable(
                f"platform {platform}: credential {name} cannot be decrypted with "
                f"{self.keys.source} (was the key changed? put the old key after the new "
                f"one in LEDGER_SECRET_KEY, or set the credential again)",
                platform=platform,
            ) from None
        if (
            not isinstance(opened, dict)
            or opened.get("platform") != platform
            or opened.get("name") != name
            or not isinstance(opened.get("value"), str)
        ):
            raise CredentialsUnavailable(
                f"platform {platform}: the stored credential {name} belongs to another "
                "platform or name; set it again",
                platform=platform,
            )
        return opened["value"]

    def q(self, sql: str) -> str:
        """``{t}`` is the table, ``?`` a parameter, on either backend."""
        if not self.is_postgres:
            return sql.replace("{t}", TABLE)
        return sql.replace("{t}", f'"{self.datastore.schema}"."{TABLE}"').replace("?", "%s")

    @contextmanager
    def _tx(self, *, write: bool = False, erasing: bool = False) -> Iterator[Any]:
        """A transaction; writes begin with a write (see ``_adopt``)."""
        with self.datastore.transaction(commit=write) as c:
            if erasing and not self.is_postgres:
                # Zero what an overwrite or a delete frees, on this connection, for this write.
                c.execute("PRAGMA secure_delete = ON")
            try:
                # The library wraps sqlite3's cursor without its rowcount.
                yield getattr(c, "sqlite_cursor", c)
            finally:
                if erasing and not self.is_postgres:
                    # Back to the default for the other users of the connection; if even
                    # this fails, the price is only slower writes on it.
                    with suppress(Exception):
                        c.execute("PRAGMA secure_delete = OFF")
