"""How a platform's answer is judged: delivered, worth retrying later, or refused for good.

Every platform adapter raises ``DeliveryError`` and nothing else for a failed request, so the
dispatcher decides retries in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# VTEX answers 423 when two updates of one SKU and warehouse collide; 408 and 425 are the
# server asking us to come back; 429 is a rate limit.
RETRYABLE_STATUSES = frozenset({408, 423, 425, 429})
MAX_RETRY_AFTER = 3600.0


class DeliveryError(Exception):
    """A request the platform did not accept; ``retryable`` says whether trying later may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if absent or
    unreadable (the caller then backs off on its own)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # An hour at most: "inf" or a typo must not silence a platform for good.
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if seconds == seconds else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER)


def check_response(response: httpx.Response, what: str) -> httpx.Response:
    """Return a 2xx response; raise ``DeliveryError`` for anything else."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    body = response.text[:300].replace("\n", " ")
    message = f"{what}: HTTP {status} {body}".rstrip()
    retryable = status in RETRYABLE_STATUSES or status >= 500
    raise DeliveryError(
        message,
        retryable=retryable,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        status=status,
    )


def transport_failure(error: httpx.HTTPError, what: str) -> DeliveryError:
    """Network errors, timeouts and dropped connections: always worth another try."""
    return DeliveryError(f"{what}: {type(error).__name__}: {error}", retryable=True)
