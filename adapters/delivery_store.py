"""The dispatcher's pending work, in the database: what each platform is owed, and its retries.

One row per (platform, kind, subject, scope) holds the newest value wanted and what the platform
last accepted. A burst of changes to one SKU overwrites the wanted value, so only the latest is
sent (newest wins). A row is sent by one dispatcher at a time: a claim is a lease, taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and under SQLite's single write lock, and a result is
recorded only by the claim's holder. A row keeps its claim while its request is in flight, so an
older value can never overtake a newer one on the wire.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ledger.quantities import render

STOCK = "stock"
ORDER = "order"


def holder_name() -> str:
    """Who holds a claim or a job lease: unique per process and per start, readable."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    platform: str
    kind: str
    subject: str
    scope: str
    payload: dict[str, Any]
    position: int
    attempts: int
    sent: dict[str, Any] | None
    wanted_at: float
    until: float  # when the claim lapses and another sender may take the row

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.platform, self.kind, self.subject, self.scope)


def stock_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "warehouse": row["warehouse"],
        "platform_warehouse": row["platform_warehouse"],
        "quantity": render(row["quantity"]),
    }


class DeliveryStore:
    """Reads and writes the ``deliveries``, ``dispatch_cursors`` and ``job_leases`` tables
    through the event store's own datastore (its connections, its schema)."""

    def __init__(self, datastore: Any, is_postgres: bool) -> None:
        self.datastore = datastore
        self.is_postgres = is_postgres

    # -- plumbing ----------------------------------------------------------------------------

    def q(self, sql: str) -> str:
        if not self.is_postgres:
            return sql
        schema = self.datastore.schema
        for table in ("deliveries", "dispatch_cursors", "job_leases", "publisher_desired"):
            sql = sql.replace(f" {table} ", f' "{schema}"."{table}" ')
        return sql.replace("?", "%s")

    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            if self.is_postgres and not durable:
                # A claim or result lost in a crash only means sending an absolute quantity
                # again; waiting for the disk on each of hundreds a second is not worth it.
                # What is owed (enqueue) waits for the disk: the cursor moves past it.
                c.execute("SET LOCAL synchronous_commit = off")
            # The library wraps sqlite3's cursor without its rowcount, which claims need.
            yield getattr(c, "sqlite_cursor", c)

    # -- filling -----------------------------------------------------------------------------

    def cursor(self, platform: str, kind: str) -> tuple[int, str, str] | None:
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT position, subject, scope FROM dispatch_cursors "
                    "WHERE platform = ? AND kind = ?"
                ),
                (platform, kind),
            )
            row = c.fetchone()
        return None if row is None else (int(row["position"]), row["subject"], row["scope"])

    def enqueue(
        self,
        platform: str,
        kind: str,
        rows: list[tuple[str, str, dict[str, Any], int, bool]],
        cursor: tuple[int, str, str],
        now: float | None = None,
    ) -> None:
        """Record newer wanted values (subject, scope, payload, position, urgent) and move the
        platform's cursor past them, in one transaction. Older values than a row holds are
        ignored, so two dispatchers filling the same page change nothing twice."""
        now = time.time() if now is None else now
        with self._tx(durable=True) as c:
            if rows:
                c.executemany(
                    self.q(
                        "INSERT INTO deliveries (platform, kind, subject, scope, payload, "
                        "position, urgent, state, attempts, due_at, wanted_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
                        "ON CONFLICT (platform, kind, subject, scope) DO UPDATE SET "
                        "payload = excluded.payload, position = excluded.position, "
                        "urgent = excluded.urgent, "
                        # A failed row stays failed (and visible) until it is retried; a row
                        # backing off keeps its backoff; a delivered one is due at once.
                        "state = CASE WHEN deliveries.state = 'sent' THEN 'pending' "
                        "ELSE deliveries.state END, "
                        "due_at = CASE WHEN deliveries.state = 'sent' THEN excluded.due_at "
                        "ELSE deliveries.due_at END, "
                        "wanted_at = CASE WHEN deliveries.state = 'sent' "
                        "THEN excluded.wanted_at ELSE deliveries.wanted_at END "
                        "WHERE deliveries.position < excluded.position"
                    ),
                    [
                        (
                            platform,
                            kind,
                            subject,
                            scope,
                            json.dumps(payload),
                            position,
                            self._bool(urgent),
                            now,
                            now,
                        )
                        for subject, scope, payload, position, urgent in rows
                    ],
                )
            c.execute(
                self.q(
                    "INSERT INTO dispatch_cursors (platform, kind, position, subject, scope) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, kind) DO UPDATE SET "
                    "position = excluded.position, subject = excluded.subject, "
                    "scope = excluded.scope WHERE (dispatch_cursors.position, "
                    "dispatch_cursors.subject, dispatch_cursors.scope) < "
                    "(excluded.position, excluded.subject, excluded.scope)"
                ),
                (platform, kind, *cursor),
            )

    def drop_unmapped(self, platform: str, warehouses: set[str]) -> int:
        """Forget the stock owed for warehouses the platform no longer maps."""
        with self._tx() as c:
            marks = ", ".join("?" for _ in warehouses)
            where = f" AND scope NOT IN ({marks})" if warehouses else ""
            c.execute(
                self.q(f"DELETE FROM deliveries WHERE platform = ? AND kind = 'stock'{where}"),
                (platform, *sorted(warehouses)),
            )
            return int(c.rowcount or 0)

    # -- sending -----------------------------------------------------------------------------

    def claim(
        self,
        platform: str,
        holder: str,
        limit: int,
        lease: float,
        now: float | None = None,
        gap: float = 0.0,
    ) -> list[Claim]:
        """Take up to ``limit`` due rows of a platform, urgent (zero stock) first, then the
        longest waiting; a row sent less than ``gap`` seconds ago waits, so a SKU changing
        all the time is sent a few times a second at most, its newest value each time."""
        if limit <= 0:
            return []
        now = time.time() if now is None else now
        lock = " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""
        with self._tx() as c:
            c.execute(
                self.q(
                    "UPDATE deliveries SET claimed_by = ?, claimed_until = ? "
                    "WHERE (platform, kind, subject, scope) IN ("
                    "SELECT platform, kind, subject, scope FROM deliveries "
                    "WHERE platform = ? AND state = 'pending' AND due_at <= ? "
                    "AND (claimed_until IS NULL OR claimed_until < ?) "
                    "AND (sent_at IS NULL OR sent_at <= ?) "
                    f"ORDER BY urgent DESC, due_at LIMIT ?{lock}) "
                    "RETURNING platform, kind, subject, scope, payload, position, attempts, "
                    "sent, wanted_at"
                ),
                (holder, now + lease, platform, now, now, now - gap, limit),
            )
            rows = c.fetchall()
        return [
            Claim(
                r["platform"],
                r["kind"],
                r["subject"],
                r["scope"],
                json.loads(r["payload"]),
                int(r["position"]),
                int(r["attempts"]),
                json.loads(r["sent"]) if r["sent"] else None,
                float(r["wanted_at"]),
                now + lease,
            )
            for r in rows
        ]

    _DELIVERED = (
        "UPDATE deliveries SET sent = ?, sent_position = ?, sent_at = ?, "
        "attempts = 0, last_error = NULL, failed_at = NULL, claimed_by = NULL, "
        "claimed_until = NULL, due_at = ?, "
        "state = CASE WHEN position = ? THEN 'sent' ELSE 'pending' END, "
        "wanted_at = CASE WHEN position = ? THEN wanted_at ELSE ? END "
        "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ? AND claimed_by = ?"
    )
    _FAILED = (
        "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, due_at = ?, "
        "claimed_by = NULL, claimed_until = NULL, state = ?, failed_at = ? "
        "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ? AND claimed_by = ?"
    )

    @staticmethod
    def _delivered_row(claim: Claim, holder: str, sent: dict[str, Any], now: float) -> tuple:
        p = claim.position
        return (json.dumps(sent), p, now, now, p, p, now, *claim.key, holder)

    @staticmethod
    def _failed_row(
        claim: Claim, holder: str, error: str, retry_at: float, give_up: bool, now: float
    ) -> tuple:
        state = "failed" if give_up else "pending"
        return (error[:1000], retry_at, state, now if give_up else None, *claim.key, holder)

    def delivered(
        self, claim: Claim, holder: str, sent: dict[str, Any], now: float | None = None
    ) -> bool:
        """Record what the platform accepted. The row is done unless a newer value arrived
        meanwhile, which is then due at once. False if the claim was lost (nothing recorded)."""
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(self.q(self._DELIVERED), self._delivered_row(claim, holder, sent, now))
            return bool(c.rowcount)

    def attempt_failed(
        self,
        claim: Claim,
        holder: str,
        error: str,
        retry_at: float,
        give_up: bool,
        now: float | None = None,
    ) -> bool:
        """Count a failed attempt: due again at ``retry_at``, or failed for good if
        ``give_up``. False if the claim was lost."""
        now = time.time() if now is None else now
        row = self._failed_row(claim, holder, error, retry_at, give_up, now)
        with self._tx() as c:
            c.execute(self.q(self._FAILED), row)
            return bool(c.rowcount)

    def record(
        self,
        holder: str,
        delivered: list[tuple[Claim, dict[str, Any], float]],
        failed: list[tuple[Claim, str, float, bool, float]],
    ) -> None:
        """Many results in one transaction: ``delivered`` (claim, sent, at) and ``failed``
        (claim, error, retry_at, give_up, at), as ``delivered`` and ``attempt_failed`` do."""
        with self._tx() as c:
            if delivered:
                c.executemany(
                    self.q(self._DELIVERED),
                    [self._delivered_row(cl, holder, sent, at) for cl, sent, at in delivered],
                )
            if failed:
                c.executemany(
                    self.q(self._FAILED),
                    [self._failed_row(cl, holder, *rest) for cl, *rest in failed],
                )

    def release(self, claims: list[Claim], holder: str) -> None:
        """Give claims back untouched (a dispatcher stopping before it sent them)."""
        with self._tx() as c:
            c.executemany(
                self.q(
                    "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL "
                    "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ? "
                    "AND claimed_by = ?"
                ),
                [(*claim.key, holder) for claim in claims],
            )

    # -- operators ---------------------------------------------------------------------------

    def retry_failed(self, platform: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(
                self.q(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, due_at = ? "
                    "WHERE platform = ? AND state = 'failed'"
                ),
                (now, platform),
            )
            return int(c.rowcount or 0)

    def resend_all(self, platform: str) -> int:
        """Send every SKU's stock again (the platform's SKU ids, account or credentials
        changed), and retry what had failed."""
        now = time.time()
        with self._tx(durable=True) as c:
            c.execute(
                self.q(
                    "UPDATE deliveries SET sent = CASE WHEN kind = 'stock' THEN NULL "
                    "ELSE sent END, state = 'pending', attempts = 0, due_at = ?, wanted_at = ? "
                    "WHERE platform = ? AND (state = 'failed' OR kind = 'stock')"
                ),
                (now, now, platform),
            )
            return int(c.rowcount or 0)

    def resend(self, platform: str, kind: str, subject: str, scope: str) -> bool:
        """Send a row's newest value again even though it was delivered (drift repair)."""
        with self._tx() as c:
            c.execute(
                self.q(
                    "UPDATE deliveries SET sent = NULL, due_at = ?, wanted_at = ?, "
                    "state = CASE WHEN state = 'failed' THEN 'failed' ELSE 'pending' END "
                    "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ?"
                ),
                (time.time(), time.time(), platform, kind, subject, scope),
            )
            return bool(c.rowcount)

    def status(self, platform: str, failed_limit: int = 100) -> dict[str, Any]:
        now = time.time()
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT state, count(*) AS n, min(wanted_at) AS oldest, "
                    "max(sent_at) AS last_sent FROM deliveries WHERE platform = ? "
                    "GROUP BY state"
                ),
                (platform,),
            )
            by_state = {r["state"]: r for r in c.fetchall()}
            c.execute(
                self.q(
                    "SELECT kind, subject, scope, payload, attempts, last_error, failed_at "
                    "FROM deliveries WHERE platform = ? AND state = 'failed' "
                    "ORDER BY failed_at, subject, scope LIMIT ?"
                ),
                (platform, failed_limit),
            )
            failed = [
                {
                    "kind": r["kind"],
                    "subject": r["subject"],
                    "warehouse": r["scope"] or None,
                    "wanted": json.loads(r["payload"]),
                    "attempts": int(r["attempts"]),
                    "last_error": r["last_error"],
                    "failed_at": float(r["failed_at"]) if r["failed_at"] else None,
                }
                for r in c.fetchall()
            ]
        pending = by_state.get("pending")
        last_sent = [float(r["last_sent"]) for r in by_state.values() if r["last_sent"]]
        return {
            "pending": int(pending["n"]) if pending else 0,
            "failed": int(by_state["failed"]["n"]) if "failed" in by_state else 0,
            "delivered": int(by_state["sent"]["n"]) if "sent" in by_state else 0,
            "oldest_pending_seconds": round(now - float(pending["oldest"]), 3) if pending else 0.0,
            "last_delivered_at": max(last_sent) if last_sent else None,
            "failed_deliveries": failed,
        }

    def delivery(self, platform: str, kind: str, subject: str, scope: str) -> dict | None:
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT * FROM deliveries WHERE platform = ? AND kind = ? AND subject = ? "
                    "AND scope = ?"
                ),
                (platform, kind, subject, scope),
            )
            row = c.fetchone()
        return None if row is None else dict(row)

    def delivered_stock(
        self, platform: str, after: tuple[str, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Stock rows the platform accepted and nothing newer waits for, by (SKU, warehouse)."""
        where, params = "", [platform]
        if after is not None:
            where = " AND (subject, scope) > (?, ?)"
            params += list(after)
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT subject, scope, payload FROM deliveries WHERE platform = ? "
                    f"AND kind = 'stock' AND state = 'sent'{where} "
                    "ORDER BY subject, scope LIMIT ?"
                ),
                [*params, limit],
            )
            return [
                {"sku": r["subject"], "warehouse": r["scope"], **json.loads(r["payload"])}
                for r in c.fetchall()
            ]

    # -- periodic jobs -----------------------------------------------------------------------

    def take_job(self, name: str, holder: str, every: float, now: float | None = None) -> bool:
        """Whether ``holder`` should run job ``name`` now: it is due (its last run is ``every``
        seconds old) and nobody else holds it. The lease lasts until the next run is due."""
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(
                self.q(
                    "INSERT INTO job_leases (name, holder, until) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                    "until = excluded.until WHERE job_leases.until <= ?"
                ),
                (name, holder, now + every, now),
            )
            return bool(c.rowcount)

    def job_done(self, name: str, report: dict[str, Any], now: float | None = None) -> None:
        with self._tx() as c:
            c.execute(
                self.q("UPDATE job_leases SET last_run_at = ?, last_report = ? WHERE name = ?"),
                (time.time() if now is None else now, json.dumps(report, default=str), name),
            )

    def jobs(self, prefix: str) -> dict[str, dict[str, Any]]:
        with self._tx() as c:
            # Not LIKE: "_" in a platform name would match any character.
            c.execute(
                self.q(
                    "SELECT name, last_run_at, last_report FROM job_leases "
                    "WHERE substr(name, 1, ?) = ?"
                ),
                (len(prefix), prefix),
            )
            return {
                r["name"][len(prefix) :]: {
                    "last_run_at": r["last_run_at"],
                    "report": json.loads(r["last_report"]) if r["last_report"] else None,
                }
                for r in c.fetchall()
            }

    def _bool(self, value: bool) -> Any:
        return value if self.is_postgres else int(value)
