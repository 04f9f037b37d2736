"""Platform credentials against real SQLite and PostgreSQL: encrypted, outside the event log,
overwritten when rotated, and a platform whose credentials cannot be read stands alone."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from pydantic import ValidationError

from adapters.credentials import CredentialsUnavailable
from adapters.database import parse_database_url
from adapters.delivery_errors import DeliveryError
from adapters.platform_hooks import receive
from adapters.secret_keys import SecretKeyInvalid, SecretKeys, key_file_of, load_keys
from adapters.vtex import VtexClient
from api.settings import Settings
from api.wiring import Container, build
from ledger import ids
from ledger.errors import InvalidInput, SecretKeyMissing, Unavailable
from ledger.platforms import Platform

KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()
VTEX = {"type": "vtex", "base_url": "https://acme.example", "warehouses": {"main": "1_1"}}


@pytest.fixture
def make_pg_container(postgres_url: str) -> Iterator[Callable[..., Container]]:
    built: list[Container] = []

    def make(**settings: object) -> Container:
        built.append(build(Settings(database_url=postgres_url, **settings)))  # type: ignore[arg-type]
        return built[-1]

    yield make
    for container in built:
        container.close()


def token() -> str:
    return secrets.token_urlsafe(32)


def stored(container: Container, platform: str) -> dict[str, tuple[str, int]]:
    """The table's rows for a platform: name -> (ciphertext, revision)."""
    store = container.credentials
    with store.datastore.transaction(commit=False) as c:
        c.execute(
            store.q("SELECT name, ciphertext, revision FROM {t} WHERE platform = ?"), (platform,)
        )
        return {r["name"]: (r["ciphertext"], int(r["revision"])) for r in c.fetchall()}


def event_bytes(container: Container) -> bytes:
    notifications = container.app.recorder.select_notifications(start=1, limit=10_000)
    return b"".join(n.state for n in notifications)


def configure(container: Container, name: str = "vtex", **body: Any) -> Platform:
    platform, _, _ = container.orders.configure(name, {**VTEX, **body})
    return platform


def test_put_keeps_replaces_and_deletes_credentials_and_events_hold_only_names(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    key, first, second, hook = token(), token(), token(), token()
    p = configure(container, credentials={"app_key": key, "app_token": first})
    assert container.credentials.read(p) == {"app_key": key, "app_token": first}

    p = configure(container, rate_limit=10)  # no credentials: kept
    assert p.public()["credentials"] == ["app_key", "app_token"]
    assert container.credentials.read(p) == {"app_key": key, "app_token": first}

    before = stored(container, "vtex")
    p = configure(container, credentials={"app_token": second, "hook_secret": hook})
    after = stored(container, "vtex")
    assert container.credentials.read(p) == {
        "app_key": key,
        "app_token": second,
        "hook_secret": hook,
    }
    # Rotating overwrites the one row: the old ciphertext is gone, not kept beside the new.
    assert after["app_token"][0] != before["app_token"][0]
    assert after["app_key"] == before["app_key"]
    assert sorted(after) == ["app_key", "app_token", "hook_secret"]

    p = configure(container, credentials={"app_key": None})
    assert container.credentials.read(p) == {"app_token": second, "hook_secret": hook}
    assert sorted(stored(container, "vtex")) == ["app_token", "hook_secret"]
    assert p.public()["credentials"] == ["app_token", "hook_secret"]

    reloaded = container.orders.platform("vtex")
    assert reloaded.credential_names == frozenset({"app_token", "hook_secret"})
    everything = event_bytes(container)
    assert b"app_token" in everything  # the names are recorded...
    for value in (key, first, second, hook):  # ...never a value
        assert value.encode() not in everything
        assert all(value not in ciphertext for ciphertext, _ in after.values())


def test_the_revision_moves_with_every_credential_change_and_only_then(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    value = token()
    p = configure(container, credentials={"app_key": value})
    assert p.credentials_revision == 1
    p = configure(container, credentials={"app_key": value})  # the same value again
    assert (p.credentials_revision, p.version) == (1, 1)
    p = configure(container, rate_limit=5)
    assert (p.credentials_revision, p.version) == (1, 2)
    p = configure(container, credentials={"app_key": token()})
    assert p.credentials_revision == 2
    p = configure(container, credentials={"nothing_here": None})  # deleting what is not there
    assert p.credentials_revision == 2
    assert {r for _, r in stored(container, "vtex").values()} == {2}


def test_values_stored_whose_event_was_lost_are_recorded_by_the_next_put(
    make_container: Callable[..., Container], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault is written first: a crash before the event leaves new values under the old
    revision. The next PUT, even without credentials, records the change, so every process
    rebuilds its adapter with them."""
    container = make_container(secret_key=KEY)
    p = configure(container, credentials={"app_key": token()})
    rotated = token()

    def crash(events: Any) -> None:
        raise RuntimeError("the process died here")

    with monkeypatch.context() as patch:
        patch.setattr(container.app, "store_events", crash)
        with pytest.raises(RuntimeError):
            configure(container, credentials={"app_key": rotated, "app_token": token()})
    p = container.orders.platform("vtex")
    assert (p.credentials_revision, sorted(p.credential_names)) == (1, ["app_key"])
    assert container.credentials.read(p)["app_key"] == rotated  # a new adapter uses it

    p = configure(container)
    assert p.credentials_revision == 2
    assert sorted(p.credential_names) == ["app_key", "app_token"]


def test_a_put_retried_after_a_crash_with_the_same_values_still_records_them(
    make_container: Callable[..., Container], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = make_container(secret_key=KEY)
    configure(container, credentials={"app_key": token()})
    rotated = token()
    with monkeypatch.context() as patch:
        patch.setattr(container.app, "store_events", lambda events: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            configure(container, credentials={"app_key": rotated})
    p = configure(container, credentials={"app_key": rotated})  # the client tries again
    assert p.credentials_revision == 2


@pytest.mark.parametrize("key", ["", None])
def test_without_a_key_postgres_refuses_credentials_and_records_nothing(
    make_pg_container: Callable[..., Container], key: str | None
) -> None:
    container = make_pg_container(secret_key=key)
    head = container.app.recorder.max_notification_id()
    with pytest.raises(SecretKeyMissing) as refused:
        configure(container, credentials={"app_key": token()})
    assert refused.value.code == "secret_key_missing"
    assert refused.value.context["field"] == "credentials"
    assert container.app.recorder.max_notification_id() == head
    assert stored(container, "vtex") == {}
    p = configure(container)  # without credentials: fine
    assert p.public()["credentials"] == []
    with pytest.raises(SecretKeyMissing):
        configure(container, credentials={"app_key": None})


def test_invalid_settings_record_nothing(make_container: Callable[..., Container]) -> None:
    container = make_container(secret_key=KEY)
    configure(container, credentials={"app_key": token()})
    head = container.app.recorder.max_notification_id()
    rows = stored(container, "vtex")
    for bad in (
        {"base_url": "http://[::1"},
        {"warehouses": {"ma\x00in": "1_1"}},
        {"credentials": {"app_token": "two\nlines"}, "base_url": "https://ok.example"},
        {"credentials": {"app_key": token()}, "skus": {"A": "1", "B": "1"}},
    ):
        with pytest.raises(InvalidInput):
            configure(container, **bad)
    assert container.app.recorder.max_notification_id() == head
    assert stored(container, "vtex") == rows


def test_a_key_that_cannot_decrypt_leaves_that_platform_unavailable_and_the_others_alone(
    make_container: Callable[..., Container],
) -> None:
    before = make_container(secret_key=KEY)
    configure(before, "vtex", credentials={"app_key": token(), "hook_secret": token()})
    before.close()

    changed = make_container(secret_key=OTHER_KEY)
    webhook = {"type": "webhook", "base_url": "https://hooks.example/in"}
    other, _, _ = changed.orders.configure("shop", {**webhook, "credentials": {"secret": token()}})
    broken = changed.orders.platform("vtex")

    problem = changed.configuration_problem(broken)
    assert problem is not None
    assert "app_key" in problem or "hook_secret" in problem
    assert "cannot be decrypted" in problem
    with pytest.raises(CredentialsUnavailable):
        changed.adapter_for(broken)
    with pytest.raises(CredentialsUnavailable):
        changed.vtex(broken)
    with pytest.raises(CredentialsUnavailable):  # the hook answers 503
        receive(changed.orders, changed.vtex, changed.credentials.read, "vtex", {}, b"{}")
    assert changed.configuration_problem(other) is None
    changed.adapter_for(other).close()  # type: ignore[union-attr]

    # Settings still change, and setting the credentials again repairs the platform.
    configure(changed, "vtex", rate_limit=3)
    repaired = configure(changed, "vtex", credentials={"app_key": token(), "hook_secret": None})
    assert changed.configuration_problem(repaired) is None


def test_a_rotated_key_still_decrypts_and_everything_is_encrypted_again_under_the_new_one(
    make_container: Callable[..., Container],
) -> None:
    value = token()
    old = make_container(secret_key=KEY)
    configure(old, credentials={"app_key": value})
    old.close()
    rotating = make_container(secret_key=f"{OTHER_KEY}, {KEY}")  # re-encrypts at start
    assert rotating.credentials.read(rotating.orders.platform("vtex")) == {"app_key": value}
    rotating.close()
    rotated = make_container(secret_key=OTHER_KEY)
    assert rotated.credentials.read(rotated.orders.platform("vtex")) == {"app_key": value}


def test_a_ciphertext_copied_into_another_row_is_refused(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    configure(container, credentials={"app_key": "k-" + token(), "hook_secret": "h-" + token()})
    rows = stored(container, "vtex")
    store = container.credentials
    with store.datastore.transaction(commit=True) as c:
        c.execute(
            store.q("UPDATE {t} SET ciphertext = ? WHERE platform = ? AND name = ?"),
            (rows["app_key"][0], "vtex", "hook_secret"),
        )
    problem = container.configuration_problem(container.orders.platform("vtex"))
    assert problem is not None
    assert "hook_secret" in problem


def write_legacy_platform(container: Container, name: str, settings: dict[str, Any]) -> None:
    """A Platform.Configured event as the ledger wrote it before credentials left the log."""
    app = container.app
    state = {
        "timestamp": datetime.now(UTC),
        "originator_topic": get_topic(Platform),
        "name": name,
        "settings": settings,
    }
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=ids.platform_id(name),
                originator_version=1,
                topic=get_topic(Platform.Configured),
                state=app.mapper.transcoder.encode(state),
            )
        ]
    )


def legacy_settings(**credentials: str) -> dict[str, Any]:
    return {
        **VTEX,
        "credentials": credentials,
        "import_from": "awaiting_payment",
        "reserve_while_pending": None,
        "carriers": {},
        "skus": {},
        "rate_limit": None,
        "feed_interval_seconds": None,
        "payment_check_seconds": None,
        "drift_check_seconds": None,
    }


def test_legacy_credentials_keep_working_are_copied_on_first_use_and_then_ignored(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    key, old_token = token(), token()
    write_legacy_platform(container, "vtex", legacy_settings(app_key=key, app_token=old_token))
    p = container.orders.platform("vtex")
    assert p.public()["credentials"] == ["app_key", "app_token"]
    assert old_token not in repr(p) + str(p.public())
    assert stored(container, "vtex") == {}

    assert container.credentials.read(p) == {"app_key": key, "app_token": old_token}
    assert sorted(stored(container, "vtex")) == ["app_key", "app_token"]  # copied, encrypted
    adapter = container.adapter_for(p)
    assert adapter is not None
    adapter.close()

    new_token = token()
    p = configure(container, credentials={"app_token": new_token})
    assert container.credentials.read(p) == {"app_key": key, "app_token": new_token}
    p = configure(container, credentials={"app_key": None, "app_token": None})
    fresh = make_container(secret_key=KEY)  # another process, loading the events anew
    again = fresh.orders.platform("vtex")
    assert again.legacy_credentials is None
    assert fresh.credentials.read(again) == {}  # deleted stays deleted: no resurrection


def test_legacy_credentials_are_copied_by_a_put_without_credentials_too(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    key = token()
    write_legacy_platform(container, "vtex", legacy_settings(app_key=key))
    p = configure(container, rate_limit=7)  # keeps the stored credentials: the legacy ones
    assert p.credentials_revision == 1
    fresh = make_container(secret_key=KEY)
    assert fresh.credentials.read(fresh.orders.platform("vtex")) == {"app_key": key}


def test_without_a_key_legacy_credentials_are_still_used_from_the_events(
    make_pg_container: Callable[..., Container],
) -> None:
    container = make_pg_container()
    key = token()
    write_legacy_platform(container, "vtex", legacy_settings(app_key=key))
    p = container.orders.platform("vtex")
    assert container.credentials.read(p) == {"app_key": key}
    assert stored(container, "vtex") == {}
    p = configure(container, rate_limit=7)  # a PUT without credentials keeps them
    assert container.credentials.read(p) == {"app_key": key}
    with pytest.raises(SecretKeyMissing):
        configure(container, credentials={"app_key": None})
    assert container.credentials.read(container.orders.platform("vtex")) == {"app_key": key}


def test_a_legacy_value_unfit_for_a_header_makes_the_platform_unavailable_not_a_leak(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    secret = "tok\nen-" + token()
    write_legacy_platform(container, "vtex", legacy_settings(app_key="k", app_token=secret))
    problem = container.configuration_problem(container.orders.platform("vtex"))
    assert problem is not None
    assert "app_token" in problem
    assert secret not in problem


def test_a_setting_stored_before_settings_were_checked_makes_that_platform_unavailable(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(secret_key=KEY)
    write_legacy_platform(container, "vtex", {**legacy_settings(), "base_url": "http://[::1"})
    p = container.orders.platform("vtex")
    problem = container.configuration_problem(p)
    assert problem is not None
    assert "base_url" in problem
    with pytest.raises(Unavailable):
        container.adapter_for(p)


def test_sqlite_without_a_key_creates_one_key_file_for_every_process(tmp_path: Path) -> None:
    database = parse_database_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    found: list[SecretKeys] = []

    def start() -> None:  # processes starting together
        keys = load_keys(None, database)
        assert keys is not None
        found.append(keys)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8
    sealed = found[0].cipher.encrypt(b"one key")
    assert all(keys.cipher.decrypt(sealed) == b"one key" for keys in found)
    later = load_keys(None, database)
    assert later is not None
    assert later.cipher.decrypt(sealed) == b"one key"
    path = key_file_of(database)
    assert path.parent == tmp_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_a_malformed_key_stops_the_start_without_showing_the_key(tmp_path: Path) -> None:
    database = parse_database_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    for bad in ("not-a-key-" + token(), f"{KEY},short-{token()}"):
        with pytest.raises(SecretKeyInvalid) as refused:
            load_keys(bad, database)
        assert bad.split(",")[-1] not in str(refused.value)
        assert "LEDGER_SECRET_KEY" in str(refused.value)
        with pytest.raises(ValidationError) as invalid:  # refused with the other settings
            Settings(secret_key=bad)  # type: ignore[arg-type]
        assert bad.split(",")[-1] not in str(invalid.value)
        assert "not a Fernet key" in str(invalid.value)


def test_a_token_with_a_line_feed_never_reaches_an_error_message() -> None:
    """h11 refuses the header and says so with the value's bytes repr: scrubbed."""
    secret = "tok\nen-" + token()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            VtexClient(url, "key", secret, timeout=5) as client,
            pytest.raises(DeliveryError) as caught,
        ):
            client.set_quantity("1", "1_1", 3)
    message = str(caught.value)
    assert secret.split("\n")[1] not in message
    assert secret.split("\n")[1] not in repr(caught.value.__cause__)


def test_on_sqlite_rotated_and_deleted_values_leave_no_old_ciphertext_in_the_file(
    sqlite_url: str,
) -> None:
    container = build(Settings(database_url=sqlite_url, secret_key=KEY))  # type: ignore[arg-type]
    try:
        configure(container, credentials={"app_key": token(), "hook_secret": token()})
        before = stored(container, "vtex")
        # A longer value: a row that no longer fits where it was is moved, not overwritten.
        configure(container, credentials={"app_key": token() * 3, "hook_secret": None})
        new = stored(container, "vtex")["app_key"][0]
    finally:
        container.close()
    path = Path(parse_database_url(sqlite_url).sqlite_path)
    with sqlite3.connect(path) as conn:  # what a backup of the file would hold
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(f"{path}-wal")
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert new.encode() in data
    assert before["app_key"][0].encode() not in data
    assert before["hook_secret"][0].encode() not in data
