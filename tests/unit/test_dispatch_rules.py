"""The dispatcher's pure rules: backoff with jitter, Retry-After, the shared rate, signatures."""

from __future__ import annotations

import random
import time

import httpx

from adapters.delivery_errors import DeliveryError, check_response, retry_after_seconds
from adapters.dispatcher import RateLimiter, backoff_delay
from adapters.webhook import sign, signature_matches


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


def test_the_rate_is_shared_and_a_pause_stops_every_sender() -> None:
    limiter = RateLimiter(rate=100, burst=10)
    assert limiter.take(50) == 10  # the burst, no more
    assert limiter.take(5) == 0
    limiter.give_back(3)  # tokens taken for claims that found no row
    assert limiter.take(5) == 3
    time.sleep(0.05)
    assert 3 <= limiter.take(50) <= 6  # 100/s refills about 5 in 50 ms
    limiter.pause(60)
    time.sleep(0.05)
    assert limiter.take(50) == 0  # a 429 stops every sender of the platform


def test_a_signature_is_an_hmac_of_the_exact_body() -> None:
    body = b'{"a": 1}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=")
    assert signature_matches("s3cret", body, header)
    assert not signature_matches("s3cret", body + b" ", header)
    assert not signature_matches("other", body, header)
    assert not signature_matches(None, body, header)
    assert not signature_matches("s3cret", body, None)
