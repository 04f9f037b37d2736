"""The dispatcher's pure rules: backoff with jitter, Retry-After, the shared budget, when a
platform is failing or has recovered, what an error may say, signatures."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from adapters.delivery_errors import DeliveryError, check_response, retry_after_seconds
from adapters.delivery_store import Claim
from adapters.dispatch_rules import (
    Backoff,
    Outcome,
    PlatformState,
    Result,
    apply_results,
    backoff_delay,
    describe,
    grant,
    scrub,
    spend,
)
from adapters.webhook import sign, signature_matches

BACKOFF = Backoff(base=0.5, cap=60.0)


def claim(subject: str = "A", attempts: int = 0) -> Claim:
    return Claim("shop", "stock", subject, "main", {}, 1, attempts, None, 0.0, 0.0)


def failed(at: float, subject: str = "A", status: int | None = 503) -> Result:
    return Result(claim(subject), Outcome.RETRYABLE, at, error=f"HTTP {status}", status=status)


def answered(at: float, outcome: Outcome = Outcome.DELIVERED) -> Result:
    return Result(claim("Z"), outcome, at, sent={})


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (8, 60.0), (30, 60.0)]:
        delays = {backoff_delay(attempt, 0.5, 60.0, None, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: failures together do not retry together


def test_retry_after_is_honoured_as_a_minimum() -> None:
    rng = random.Random(2)
    assert all(backoff_delay(1, 0.5, 60, 7.0, rng) >= 7.0 for _ in range(20))
    assert all(backoff_delay(1, 0.5, 60, 7.0, rng) <= 8.0 for _ in range(20))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # long past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_statuses_are_judged_retryable_or_not() -> None:
    def judged(status: int, **headers: str) -> DeliveryError:
        try:
            check_response(httpx.Response(status, headers=headers), "x")
        except DeliveryError as error:
            return error
        raise AssertionError("accepted")

    assert judged(429, **{"Retry-After": "2"}).retry_after == 2.0
    assert all(judged(s).retryable for s in (423, 429, 500, 502, 503, 504, 408))
    assert not any(judged(s).retryable for s in (400, 401, 403, 404, 422))
    assert check_response(httpx.Response(204), "x").status_code == 204


def test_backoff_never_overflows_however_many_attempts() -> None:
    rng = random.Random(3)
    assert 30.0 <= backoff_delay(5_000, 0.5, 60.0, None, rng) <= 60.0


def test_the_budget_refills_at_the_rate_up_to_a_burst_and_is_spent_by_claims() -> None:
    state, rng = PlatformState("shop"), random.Random(4)
    first = grant(state, 1000.0, 100.0, wanted=50)
    assert first.requests == 10  # a full bucket: a tenth of a second's requests
    spend(state, 10, first.probe, 1000.0, BACKOFF, rng, 100.0)
    assert grant(state, 1000.0, 100.0, wanted=50).requests == 0
    assert grant(state, 1000.05, 100.0, wanted=50).requests == 5  # 100/s refills 5 in 50 ms
    assert grant(state, 1000.06, 100.0, wanted=3).requests == 3  # never more than wanted
    assert grant(state, 999.0, 100.0, wanted=3).requests == 3  # a clock behind adds nothing


def test_a_429_pauses_every_claim_for_its_retry_after_capped() -> None:
    state, rng = PlatformState("shop"), random.Random(5)
    slow_down = Result(claim(), Outcome.RETRYABLE, 1000.0, status=429, retry_after=5.0)
    apply_results(state, [slow_down], BACKOFF, rng)
    assert grant(state, 1004.9, 100.0, wanted=5).requests == 0
    assert grant(state, 1005.1, 100.0, wanted=5).requests == 5
    forever = Result(claim(), Outcome.RETRYABLE, 2000.0, status=429, retry_after=3600.0)
    apply_results(state, [forever], Backoff(0.5, 10.0), rng)
    assert grant(state, 2010.1, 100.0, wanted=5).requests == 5  # the cap bounds the pause
    assert not state.failing  # slowing down is not failing


def test_failures_of_several_deliveries_make_the_platform_failing_and_it_is_probed() -> None:
    state, rng = PlatformState("shop"), random.Random(6)
    change = apply_results(state, [failed(1.0, "A"), failed(2.0, "B")], BACKOFF, rng)
    assert not change.started_failing  # two are not yet a pattern
    assert not state.failing
    change = apply_results(state, [failed(3.0, "A")], BACKOFF, rng)
    assert change.started_failing
    assert state.failing_since == 3.0
    assert change.error == "HTTP 503"
    assert state.probe_at is not None
    assert 3.0 < state.probe_at <= 3.5
    assert grant(state, 3.0, 100.0, wanted=16).requests == 0  # not before the first probe
    probe = grant(state, 4.0, 100.0, wanted=16)
    assert (probe.requests, probe.probe) == (1, True)  # one at a time
    spend(state, 1, True, 4.0, BACKOFF, rng, 100.0)
    assert grant(state, 4.0, 100.0, wanted=16).requests == 0
    # Probes space out with the same capped backoff: never more than the cap apart.
    for n in range(20):
        spend(state, 1, True, 100.0 * n, BACKOFF, rng, 100.0)
        assert (state.probe_at or 0) - 100.0 * n <= 60.0


def test_one_delivery_failing_again_and_again_is_not_the_platform_failing() -> None:
    state = PlatformState("shop")
    apply_results(state, [failed(float(n), "A") for n in range(10)], BACKOFF, random.Random(7))
    assert not state.failing
    assert state.last_error == "HTTP 503"


def test_lock_collisions_and_rate_limits_are_answers_not_outages() -> None:
    state = PlatformState("shop")
    results = [failed(float(n), f"S{n}", status=423) for n in range(5)]
    results += [failed(10.0 + n, f"T{n}", status=429) for n in range(5)]
    apply_results(state, results, BACKOFF, random.Random(8))
    assert not state.failing
    assert state.failures == 0


def test_any_answer_ends_the_failing_and_says_for_how_long() -> None:
    for outcome in (Outcome.DELIVERED, Outcome.REFUSED):
        state, rng = PlatformState("shop"), random.Random(9)
        apply_results(state, [failed(float(n), f"S{n}") for n in range(3)], BACKOFF, rng)
        assert state.failing
        change = apply_results(state, [answered(42.0, outcome)], BACKOFF, rng)
        assert change.recovered_after == 40.0  # failing since the third failure, at 2.0
        assert not state.failing
        assert (state.failures, state.probe_at) == (0, None)
        assert grant(state, 42.0, 100.0, wanted=16).requests == 10  # the rate, no probing


def test_a_crash_counts_as_a_failure_and_skipped_sends_count_as_nothing() -> None:
    state, rng = PlatformState("shop"), random.Random(10)
    crashes = [Result(claim(f"S{n}"), Outcome.UNEXPECTED, float(n), error="boom") for n in range(3)]
    apply_results(state, crashes, BACKOFF, rng)
    assert state.failing
    skipped = Result(claim("Z"), Outcome.DELIVERED, 9.0, sent={}, request=False)
    apply_results(state, [skipped], BACKOFF, rng)
    assert state.failing  # no request was made: nothing was learnt about the platform
    assert state.counts[Outcome.UNEXPECTED] == 3
    assert state.counts[Outcome.DELIVERED] == 0


def test_an_error_never_carries_a_secret_nor_a_line_break_and_stays_short() -> None:
    secret = "s3cr/t k\\ey\u00e9"
    text = "\n".join(
        [
            f"GET https://x/?token={quote(secret, safe='')} failed",  # in a URL
            f"GET https://x/{quote(secret)} failed",
            f"body: {json.dumps({'token': secret})}",  # echoed in JSON
            f"repr: {secret!r}",
            f"plain: {secret}",
        ]
    )
    cleaned = scrub(text, [secret, ""])
    assert "s3cr" not in cleaned
    assert "\n" not in cleaned
    assert cleaned.count("***") == 5
    assert len(scrub("x" * 5000, [])) == 300


def test_an_unexpected_error_says_where_in_our_code_it_happened() -> None:
    try:
        json.dumps({"issued_at": datetime(2026, 1, 1, tzinfo=UTC)})
    except TypeError as error:
        described = describe(error)
    assert described.startswith("TypeError: Object of type datetime is not JSON serializable")
    assert "(at tests/unit/test_dispatch_rules.py:" in described


def test_a_signature_is_an_hmac_of_the_exact_body() -> None:
    body = b'{"a": 1}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=")
    assert signature_matches("s3cret", body, header)
    assert not signature_matches("s3cret", body + b" ", header)
    assert not signature_matches("other", body, header)
    assert not signature_matches(None, body, header)
    assert not signature_matches("s3cret", body, None)
