"""The dispatcher's rules, without I/O: retry delays, one request budget per platform, and when a
platform counts as failing or recovered.

Invariant: a delivery that may succeed later is never given up. Every attempt ends in one of four
outcomes: delivered, refused (an answer that repeating cannot change: the other 4xx, or no
``base_url``; the delivery is ``failed`` until someone retries it), or a retryable or unexpected
error (the delivery is ``retrying``, due again after a capped, jittered exponential delay, for as
long as it takes).

Why an outage of any length converges within the backoff cap plus the time the platform's rate
needs to send what is pending:

- Each platform has one row of state shared by every dispatcher (``dispatch_platforms``): its
  token bucket, its 429 pause and its health. Claims take tokens from it in the same transaction,
  so several dispatchers together never exceed the rate, and a 429 pauses all of them.
- When failed attempts follow each other with no success in between, and they involve more than
  one delivery (one bad delivery is that delivery's problem, not the platform's), the platform is
  *failing*. While it fails, its rows are not sent at all, whatever their own backoff says: one
  *probe* (one row, zero stock first) goes out at a time, the probes spaced by the same capped
  exponential backoff. So an outage costs the platform one request per interval, not one per row,
  and a probe is never more than the cap away.
- The first answer (a delivery, or a refusal: the platform answers again) ends the failing state
  and makes every backing-off row due at once. From then on only the rate limits how fast the
  backlog drains, zero stock first, newest value per row. Hence: at most one cap (the next probe)
  plus pending / rate after the platform is back.
"""

from __future__ import annotations

import random
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.scrubbing import scrub as scrub_forms

if TYPE_CHECKING:
    from adapters.delivery_store import Claim

FAILING_AFTER = 3  # failed attempts in a row (of at least two deliveries) make a platform failing
DEFAULT_PAUSE = 1.0  # seconds a 429 without Retry-After pauses the platform
ERROR_LENGTH = 300  # characters of an error kept on a delivery
_PROJECT = Path(__file__).resolve().parent.parent
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable_error"
    REFUSED = "refused"
    UNEXPECTED = "unexpected_error"


@dataclass(frozen=True)
class Result:
    """How one attempt ended: the typed message from a sending thread to the delivery table."""

    claim: Claim
    outcome: Outcome
    at: float
    sent: dict[str, Any] | None = None  # delivered: what the platform has now
    error: str | None = None  # scrubbed and short
    retry_at: float | None = None  # retrying: when it is due again
    status: int | None = None  # the platform's HTTP status, if it answered
    retry_after: float | None = None
    request: bool = True  # False: nothing needed sending (the platform has it already)

    @property
    def platform_failed(self) -> bool:
        """Whether this attempt says the platform itself may be down: no answer, 5xx, 408, 425,
        or a crash. A 423 (one SKU locked) and a 429 (slow down) are answers, not outages."""
        if self.outcome is Outcome.UNEXPECTED:
            return True
        return self.outcome is Outcome.RETRYABLE and self.status not in (423, 429)

    @property
    def platform_answered(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.REFUSED)


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        return backoff_delay(attempt, self.base, self.cap, retry_after, rng)


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with jitter, so many rows failing
    together do not come back together; at least what the platform asked for."""
    # The exponent is bounded: attempts never stop now, and 2 ** 1100 is no float.
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 60))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, min(1.0, retry_after / 10 + 0.05)))
    return delay


def burst_of(rate: float) -> float:
    """Requests a platform may receive at once after a quiet moment: a tenth of a second's."""
    return max(1.0, rate / 10)


@dataclass
class PlatformState:
    """One platform's row of ``dispatch_platforms``: shared by every dispatcher."""

    platform: str
    tokens: float = 0.0
    refilled_at: float = 0.0
    paused_until: float = 0.0
    failures: int = 0  # failed attempts since the platform last answered
    first_failure: str | None = None  # the delivery that failed first among them
    spread: bool = False  # whether they involve more than that one delivery
    failing_since: float | None = None
    probes: int = 0  # probes sent while failing
    probe_at: float | None = None  # no probe before this
    last_error: str | None = None
    last_error_at: float | None = None
    halted: str | None = None  # why no dispatcher can serve the platform (its adapter, ...)
    halted_until: float | None = None
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def is_halted(self, now: float) -> bool:
        return self.halted is not None and (self.halted_until or 0) > now


@dataclass(frozen=True)
class Grant:
    """What a claim may take now: ``requests`` rows; a probe ignores the rows' own backoff."""

    requests: int
    probe: bool


def grant(state: PlatformState, now: float, rate: float | None, wanted: int) -> Grant:
    """Refill the bucket to ``now`` and say how many requests may start. Nothing while a 429's
    pause lasts; one probe at a time while the platform fails."""
    if rate is None:  # no budget (tools and tests)
        tokens = float(wanted)
    else:
        elapsed = max(0.0, now - state.refilled_at)
        tokens = min(burst_of(rate), state.tokens + elapsed * rate)
        state.tokens, state.refilled_at = tokens, now
    if now < state.paused_until or wanted <= 0:
        return Grant(0, False)
    # Epoch seconds carry about 2e-7 s of float error: 4.9999 tokens are 5.
    whole = int(tokens + 1e-3)
    if state.failing:
        due = state.probe_at is None or now >= state.probe_at
        return Grant(1 if due and whole >= 1 else 0, True)
    return Grant(max(0, min(wanted, whole)), False)


def spend(
    state: PlatformState,
    taken: int,
    probe: bool,
    now: float,
    backoff: Backoff,
    rng: random.Random,
    rate: float | None,
) -> None:
    if rate is not None:
        state.tokens -= taken
    if probe and taken:
        state.probes += 1
        state.probe_at = now + backoff.delay(state.probes, None, rng)


@dataclass(frozen=True)
class Change:
    """What a round of results did to a platform: it started failing, or answered again."""

    started_failing: bool = False
    recovered_after: float | None = None  # seconds it was failing
    error: str | None = None  # the last failure's


def apply_results(
    state: PlatformState, results: Iterable[Result], backoff: Backoff, rng: random.Random
) -> Change:
    """Fold a round's results (in the order they happened) into the platform's state."""
    before = state.failing_since
    recovered: float | None = None
    for result in sorted(results, key=lambda r: r.at):
        if not result.request:
            continue  # no request: says nothing about the platform
        state.counts[result.outcome] += 1
        if result.status == 429:
            pause = DEFAULT_PAUSE if result.retry_after is None else result.retry_after
            state.paused_until = max(state.paused_until, result.at + min(pause, backoff.cap))
        if result.platform_answered:
            if state.failing_since is not None and recovered is None:
                recovered = max(0.0, result.at - state.failing_since)
            state.failures, state.first_failure, state.spread = 0, None, False
            state.failing_since, state.probes, state.probe_at = None, 0, None
        elif result.platform_failed:
            key = "\x1f".join(result.claim.key)
            if state.failures == 0:
                state.first_failure = key
            elif key != state.first_failure:
                state.spread = True
            state.failures += 1
            state.last_error, state.last_error_at = result.error, result.at
            if state.failing_since is None and state.failures >= FAILING_AFTER and state.spread:
                state.failing_since, state.probes = result.at, 0
                state.probe_at = result.at + backoff.delay(1, None, rng)
    started = state.failing_since is not None and (before is None or recovered is not None)
    return Change(started_failing=started, recovered_after=recovered, error=state.last_error)


def secrets_in(settings: dict[str, Any] | None, adapter: object = None) -> list[str]:
    """The credential values a platform's settings (and its adapter, if it says) hold."""
    found = [s for s in getattr(adapter, "secrets", None) or () if isinstance(s, str)]
    credentials = (settings or {}).get("credentials") or {}
    if isinstance(credentials, dict):
        found += [v for v in credentials.values() if isinstance(v, str)]
    return found


def scrub(text: str, secrets: Iterable[str], limit: int = ERROR_LENGTH) -> str:
    """``text`` with every secret blanked out in every form a message may hold it
    (``adapters/scrubbing.py``), on one line, at most ``limit`` characters."""
    text = scrub_forms(text, [s for s in secrets if isinstance(s, str)])
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(error: BaseException) -> str:
    """An unexpected exception in a line: its type, its message and where in our code it
    happened (no traceback: it could carry what the message was scrubbed of)."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if path.is_relative_to(_PROJECT) and ".venv" not in path.parts:
            where = f" (at {path.relative_to(_PROJECT)}:{frame.lineno} in {frame.name})"
            break
    return f"{type(error).__name__}: {error}{where}"
