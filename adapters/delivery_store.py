"""The dispatcher's pending work, in the database: what each platform is owed, and its retries.

One row per (platform, kind, subject, scope) holds the newest value wanted and what the platform
last accepted. A burst of changes to one SKU overwrites the wanted value, so only the latest is
sent (newest wins). A row is sent by one dispatcher at a time: a claim is a lease, taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and under SQLite's single write lock, and a result is
recorded only by the claim's holder. A row keeps its claim while its request is in flight, so an
older value can never overtake a newer one on the wire.

A row is ``pending`` (waiting for its first attempt), ``retrying`` (an attempt failed in a way
that trying again may fix: due again at ``due_at``, however many attempts it takes), ``failed``
(the platform refused it: waits for ``POST /platforms/{name}/retry``) or ``sent``. Each
platform's row in ``dispatch_platforms`` is its request budget, its 429 pause and its health,
shared by every dispatcher and read and written in the same transactions as the claims and
results (the rules are in ``adapters.dispatch_rules``).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adapters.dispatch_rules import (
    Backoff,
    Change,
    Outcome,
    PlatformState,
    Result,
    apply_results,
    grant,
    spend,
)
from ledger.quantities import render

STOCK = "stock"
ORDER = "order"
WAITING = ("pending", "retrying")  # the states a claim takes rows from
# The status's name for each state of the table.
_COUNTED = (
    ("pending", "pending"),
    ("retrying", "retrying"),
    ("failed", "failed"),
    ("delivered", "sent"),
)
HALT_SECONDS = 30.0  # a platform's halt shows this long unless its dispatcher says it again


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
        tables = (
            "deliveries",
            "dispatch_cursors",
            "dispatch_platforms",
            "job_leases",
            "publisher_desired",
        )
        for table in tables:
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
        *,
        rate: float | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> list[Claim]:
        """Take up to ``limit`` due rows of a platform, urgent (zero stock) first, then the
        longest waiting; a row sent less than ``gap`` seconds ago waits, so a SKU changing
        all the time is sent a few times a second at most, its newest value each time.

        With a ``rate``, the rows are paid for from the platform's shared budget in the same
        transaction (its row is locked meanwhile), so every dispatcher together keeps to it;
        nothing is taken while a 429 pauses the platform, and one probe at a time while it
        fails (see ``adapters.dispatch_rules``)."""
        if limit <= 0:
            return []
        now = time.time() if now is None else now
        backoff = backoff or Backoff()
        with self._tx() as c:
            state = self._lock_platform(c, platform)
            allowed = grant(state, now, rate, limit)
            if allowed.requests <= 0:
                return []  # the budget was only read: nothing to write
            claims = self._claim_rows(
                c, platform, holder, allowed.requests, lease, now, gap, allowed.probe
            )
            spend(state, len(claims), allowed.probe, now, backoff, rng or random.Random(), rate)
            if claims:
                self._save_platform(c, state)
        return claims

    def _claim_rows(
        self,
        c: Any,
        platform: str,
        holder: str,
        limit: int,
        lease: float,
        now: float,
        gap: float,
        probe: bool,
    ) -> list[Claim]:
        lock = " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""
        # A probe goes out whatever the rows' own backoff says: while the platform fails, the
        # probes' spacing is what waits.
        due = float("inf") if probe else now
        c.execute(
            self.q(
                "UPDATE deliveries SET claimed_by = ?, claimed_until = ? "
                "WHERE (platform, kind, subject, scope) IN ("
                "SELECT platform, kind, subject, scope FROM deliveries "
                "WHERE platform = ? AND state IN ('pending', 'retrying') AND due_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) "
                "AND (sent_at IS NULL OR sent_at <= ?) "
                f"ORDER BY urgent DESC, due_at LIMIT ?{lock}) "
                "RETURNING platform, kind, subject, scope, payload, position, attempts, "
                "sent, wanted_at"
            ),
            (holder, now + lease, platform, due, now, now - gap, limit),
        )
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
            for r in c.fetchall()
        ]

    # -- a platform's shared row -------------------------------------------------------------

    _PLATFORM_COLUMNS = (
        "tokens, refilled_at, paused_until, failures, first_failure, spread, failing_since, "
        "probes, probe_at, last_error, last_error_at, halted, halted_until, delivered, "
        "retryable_errors, refused, unexpected_errors"
    )
    _COUNTERS = {
        Outcome.DELIVERED: "delivered",
        Outcome.RETRYABLE: "retryable_errors",
        Outcome.REFUSED: "refused",
        Outcome.UNEXPECTED: "unexpected_errors",
    }

    def _lock_platform(self, c: Any, platform: str) -> PlatformState:
        """The platform's row, locked until the transaction ends; created if missing."""
        select = self.q(
            f"SELECT {self._PLATFORM_COLUMNS} FROM dispatch_platforms WHERE platform = ?"
        )
        insert = self.q(
            "INSERT INTO dispatch_platforms (platform) VALUES (?) ON CONFLICT (platform) DO NOTHING"
        )
        if self.is_postgres:
            c.execute(select + " FOR UPDATE", (platform,))
            row = c.fetchone()
            if row is None:
                c.execute(insert, (platform,))
                c.execute(select + " FOR UPDATE", (platform,))
                row = c.fetchone()
        else:
            # A write first: it takes SQLite's write lock, which a transaction that had only
            # read could not take later (WAL: another writer may have moved on meanwhile).
            c.execute(insert, (platform,))
            c.execute(select, (platform,))
            row = c.fetchone()
        return self._platform_state(platform, row)

    def _platform_state(self, platform: str, row: Any) -> PlatformState:
        def number(name: str) -> float | None:
            return None if row[name] is None else float(row[name])

        return PlatformState(
            platform=platform,
            tokens=float(row["tokens"]),
            refilled_at=float(row["refilled_at"]),
            paused_until=float(row["paused_until"]),
            failures=int(row["failures"]),
            first_failure=row["first_failure"],
            spread=bool(row["spread"]),
            failing_since=number("failing_since"),
            probes=int(row["probes"]),
            probe_at=number("probe_at"),
            last_error=row["last_error"],
            last_error_at=number("last_error_at"),
            halted=row["halted"],
            halted_until=number("halted_until"),
            counts={o: int(row[column]) for o, column in self._COUNTERS.items()},
        )

    def _save_platform(self, c: Any, state: PlatformState) -> None:
        c.execute(
            self.q(
                "UPDATE dispatch_platforms SET tokens = ?, refilled_at = ?, paused_until = ?, "
                "failures = ?, first_failure = ?, spread = ?, failing_since = ?, probes = ?, "
                "probe_at = ?, last_error = ?, last_error_at = ?, delivered = ?, "
                "retryable_errors = ?, refused = ?, unexpected_errors = ? WHERE platform = ?"
            ),
            (
                state.tokens,
                state.refilled_at,
                state.paused_until,
                state.failures,
                state.first_failure,
                self._bool(state.spread),
                state.failing_since,
                state.probes,
                state.probe_at,
                state.last_error,
                state.last_error_at,
                *(state.counts[o] for o in self._COUNTERS),
                state.platform,
            ),
        )

    def halt(self, platform: str, reason: str, now: float | None = None) -> None:
        """Say why no dispatcher can serve the platform now (its adapter cannot be built, its
        deliveries cannot be filled). Shown for ``HALT_SECONDS`` unless said again."""
        now = time.time() if now is None else now
        with self._tx() as c:
            self._lock_platform(c, platform)
            c.execute(
                self.q(
                    "UPDATE dispatch_platforms SET halted = ?, halted_until = ? WHERE platform = ?"
                ),
                (reason, now + HALT_SECONDS, platform),
            )

    def resume(self, platform: str) -> None:
        """The platform can be served again."""
        with self._tx() as c:
            c.execute(
                self.q(
                    "UPDATE dispatch_platforms SET halted = NULL, halted_until = NULL "
                    "WHERE platform = ? AND halted IS NOT NULL"
                ),
                (platform,),
            )

    # -- results -----------------------------------------------------------------------------

    _DELIVERED = (
        "UPDATE deliveries SET sent = ?, sent_position = ?, sent_at = ?, "
        "attempts = 0, last_error = NULL, failed_at = NULL, first_failed_at = NULL, "
        "claimed_by = NULL, claimed_until = NULL, due_at = ?, "
        "state = CASE WHEN position = ? THEN 'sent' ELSE 'pending' END, "
        "wanted_at = CASE WHEN position = ? THEN wanted_at ELSE ? END "
        "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ? AND claimed_by = ?"
    )
    _FAILED = (
        "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, due_at = ?, "
        "claimed_by = NULL, claimed_until = NULL, state = ?, failed_at = ?, "
        "first_failed_at = COALESCE(first_failed_at, ?) "
        "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ? AND claimed_by = ?"
    )

    @staticmethod
    def _delivered_row(claim: Claim, holder: str, sent: dict[str, Any], now: float) -> tuple:
        p = claim.position
        return (json.dumps(sent), p, now, now, p, p, now, *claim.key, holder)

    @staticmethod
    def _failed_row(result: Result, holder: str) -> tuple:
        refused = result.outcome is Outcome.REFUSED
        return (
            (result.error or "")[:1000],
            result.at if refused or result.retry_at is None else result.retry_at,
            "failed" if refused else "retrying",
            result.at if refused else None,
            result.at,
            *result.claim.key,
            holder,
        )

    def record(
        self, holder: str, results: list[Result], backoff: Backoff | None = None
    ) -> dict[str, Change]:
        """Many results in one transaction: each delivery's row (only while ``holder`` still
        holds its claim) and each platform's health and counters. A platform that answers
        again after failing has its backing-off rows made due at once. Returns what changed
        per platform."""
        backoff = backoff or Backoff()
        delivered = [r for r in results if r.outcome is Outcome.DELIVERED]
        failed = [r for r in results if r.outcome is not Outcome.DELIVERED]
        by_platform: dict[str, list[Result]] = defaultdict(list)
        for result in results:
            by_platform[result.claim.platform].append(result)
        changes: dict[str, Change] = {}
        rng = random.Random()
        with self._tx() as c:
            # Platform rows first, in one order, as claims take them: whoever holds a platform's
            # row may then wait for its deliveries, never the other way round.
            states = {p: self._lock_platform(c, p) for p in sorted(by_platform)}
            if delivered:
                c.executemany(
                    self.q(self._DELIVERED),
                    [self._delivered_row(r.claim, holder, r.sent or {}, r.at) for r in delivered],
                )
            if failed:
                c.executemany(self.q(self._FAILED), [self._failed_row(r, holder) for r in failed])
            for platform, state in states.items():
                change = apply_results(state, by_platform[platform], backoff, rng)
                self._save_platform(c, state)
                if change.recovered_after is not None:
                    now = max(r.at for r in by_platform[platform])
                    c.execute(
                        self.q(
                            "UPDATE deliveries SET due_at = ? WHERE platform = ? "
                            "AND state = 'retrying' AND due_at > ?"
                        ),
                        (now, platform, now),
                    )
                changes[platform] = change
        return changes

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
        refused: bool,
        now: float | None = None,
    ) -> bool:
        """Count a failed attempt of one row: ``retrying`` until ``retry_at``, or ``failed``
        if ``refused``. False if the claim was lost."""
        now = time.time() if now is None else now
        outcome = Outcome.REFUSED if refused else Outcome.RETRYABLE
        result = Result(claim, outcome, now, error=error, retry_at=retry_at)
        with self._tx() as c:
            c.execute(self.q(self._FAILED), self._failed_row(result, holder))
            return bool(c.rowcount)

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
                    "UPDATE deliveries SET state = 'pending', attempts = 0, due_at = ?, "
                    "first_failed_at = NULL WHERE platform = ? AND state = 'failed'"
                ),
                (now, platform),
            )
            return int(c.rowcount or 0)

    def resend_all(self, platform: str) -> int:
        """Send every SKU's stock again (the platform's SKU ids, account or credentials
        changed), and retry what had failed or is backing off, now. The platform's failures
        are forgotten: they say nothing about its new address or credentials."""
        now = time.time()
        with self._tx(durable=True) as c:
            c.execute(
                self.q(
                    "UPDATE dispatch_platforms SET failures = 0, first_failure = NULL, "
                    "spread = ?, failing_since = NULL, probes = 0, probe_at = NULL "
                    "WHERE platform = ?"
                ),
                (self._bool(False), platform),
            )
            c.execute(
                self.q(
                    "UPDATE deliveries SET sent = CASE WHEN kind = 'stock' THEN NULL "
                    "ELSE sent END, state = 'pending', attempts = 0, first_failed_at = NULL, "
                    "due_at = ?, wanted_at = ? WHERE platform = ? "
                    "AND (state IN ('failed', 'retrying') OR kind = 'stock')"
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
                    "state = CASE WHEN state IN ('failed', 'retrying') THEN state "
                    "ELSE 'pending' END "
                    "WHERE platform = ? AND kind = ? AND subject = ? AND scope = ?"
                ),
                (time.time(), time.time(), platform, kind, subject, scope),
            )
            return bool(c.rowcount)

    _LISTED = (
        "SELECT kind, subject, scope, payload, attempts, last_error, failed_at, "
        "first_failed_at, due_at FROM deliveries WHERE platform = ? AND state = ? "
    )

    def status(self, platform: str, listed: int = 100) -> dict[str, Any]:
        """What waits for a platform and why: counts per state, the publish lag, the platform's
        health, and (up to ``listed`` each) the deliveries retrying and failed."""
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
                self.q(self._LISTED + "ORDER BY first_failed_at, subject, scope LIMIT ?"),
                (platform, "retrying", listed),
            )
            retrying = [self._listed(r) for r in c.fetchall()]
            c.execute(
                self.q(self._LISTED + "ORDER BY failed_at, subject, scope LIMIT ?"),
                (platform, "failed", listed),
            )
            failed = [self._listed(r) for r in c.fetchall()]
            health = self._platform_row(c, platform)
        waiting = [float(by_state[s]["oldest"]) for s in WAITING if s in by_state]
        last_sent = [float(r["last_sent"]) for r in by_state.values() if r["last_sent"]]
        return {
            **{key: int(by_state[s]["n"]) if s in by_state else 0 for key, s in _COUNTED},
            "oldest_pending_seconds": round(max(0.0, now - min(waiting)), 3) if waiting else 0.0,
            "last_delivered_at": max(last_sent) if last_sent else None,
            **self._health(health, now),
            "retrying_deliveries": retrying,
            "failed_deliveries": failed,
        }

    @staticmethod
    def _listed(r: Any) -> dict[str, Any]:
        def moment(name: str) -> float | None:
            return None if r[name] is None else float(r[name])

        return {
            "kind": r["kind"],
            "subject": r["subject"],
            "warehouse": r["scope"] or None,
            "wanted": json.loads(r["payload"]),
            "attempts": int(r["attempts"]),
            "first_failed_at": moment("first_failed_at"),
            "last_error": r["last_error"],
            "failed_at": moment("failed_at"),
            "next_attempt_at": None if r["failed_at"] is not None else moment("due_at"),
        }

    def _platform_row(self, c: Any, platform: str) -> PlatformState | None:
        c.execute(
            self.q(f"SELECT {self._PLATFORM_COLUMNS} FROM dispatch_platforms WHERE platform = ?"),
            (platform,),
        )
        row = c.fetchone()
        return None if row is None else self._platform_state(platform, row)

    @staticmethod
    def _health(state: PlatformState | None, now: float) -> dict[str, Any]:
        if state is None:
            state = PlatformState(platform="")
        halted = state.is_halted(now)
        return {
            "failing": state.failing or halted,
            "failing_since": state.failing_since,
            "last_error": state.halted if halted else state.last_error,
            "last_error_at": state.last_error_at,
            "halted": state.halted if halted else None,
            "paused_until": state.paused_until if state.paused_until > now else None,
            "next_probe_at": state.probe_at if state.failing else None,
            "attempts": {o.value: n for o, n in state.counts.items()},
        }

    def figures(self) -> list[dict[str, Any]]:
        """Every platform's counts, publish lag, health and attempt counters, for /metrics."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT platform, state, count(*) AS n, min(wanted_at) AS oldest "
                    "FROM deliveries WHERE state IN ('pending', 'retrying', 'failed') "
                    "GROUP BY platform, state"
                )
            )
            counted = c.fetchall()
            c.execute(self.q(f"SELECT platform, {self._PLATFORM_COLUMNS} FROM dispatch_platforms "))
            states = {r["platform"]: self._platform_state(r["platform"], r) for r in c.fetchall()}
        figures: dict[str, dict[str, Any]] = {}
        for name in sorted({r["platform"] for r in counted} | set(states)):
            figures[name] = {
                "platform": name,
                "pending": 0,
                "retrying": 0,
                "failed": 0,
                "oldest_pending_seconds": 0.0,
                **self._health(states.get(name), now),
            }
        for r in counted:
            entry = figures[r["platform"]]
            entry[r["state"]] = int(r["n"])
            if r["state"] in WAITING:
                age = max(0.0, now - float(r["oldest"]))
                entry["oldest_pending_seconds"] = max(entry["oldest_pending_seconds"], age)
        return list(figures.values())

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

    def of_subject(self, kind: str, subject: str) -> list[dict[str, Any]]:
        """Every platform's row for one SKU (kind ``stock``) or order: what was last sent and
        when, and what waits (a pending row that has failed before is retrying)."""
        with self._tx() as c:
            c.execute(
                self.q(
                    "SELECT platform, scope, payload, state, attempts, last_error, sent, "
                    "sent_at, due_at FROM deliveries WHERE kind = ? AND subject = ? "
                    "ORDER BY platform, scope"
                ),
                (kind, subject),
            )
            rows = [dict(r) for r in c.fetchall()]
        for row in rows:
            row["wanted"] = json.loads(row.pop("payload"))
            row["sent"] = None if row["sent"] is None else json.loads(row["sent"])
            if row["state"] == "pending" and row["attempts"]:
                row["state"] = "retrying"
        return rows

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

    def report_job(self, name: str, report: dict[str, Any] | None) -> None:
        """Show ``report`` as job ``name``'s last run without running it (a platform whose
        jobs cannot even be set up says why); None removes it."""
        with self._tx() as c:
            if report is None:
                c.execute(self.q("DELETE FROM job_leases WHERE name = ?"), (name,))
                return
            c.execute(
                self.q(
                    "INSERT INTO job_leases (name, holder, until, last_run_at, last_report) "
                    "VALUES (?, '', 0, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                    "last_run_at = excluded.last_run_at, last_report = excluded.last_report"
                ),
                (name, time.time(), json.dumps(report, default=str)),
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
