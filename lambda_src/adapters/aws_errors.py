"""botocore failures as the domain's DependencyUnavailable: one translation for every data-plane adapter.

What reaches an adapter has already been through botocore's retries (standard mode, set for every
client in handlers.wiring), so a throttle, a 5xx, a timeout or a lost connection here means "not now":
the API answers 503 + Retry-After with a sentence the user can act on, never a 500. Everything else
(access denied, a missing table, a malformed request: configuration faults and bugs) passes through
unchanged, so it still fails loudly with a reference to the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from core.errors import DependencyUnavailable

# botocore's throttling codes (botocore.retries.standard), S3's and SQS's included.
THROTTLING_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
        "PriorRequestNotComplete", "ThrottlingError",
    }
)  # fmt: skip
SERVER_CODES = frozenset(
    {
        "InternalServerError", "InternalFailure", "InternalError", "ServiceUnavailable",
        "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
    }
)  # fmt: skip
THROTTLED_RETRY_AFTER_S = 2
UNREACHABLE_RETRY_AFTER_S = 5


def unavailable(error: Exception, *, service: str, doing: str) -> DependencyUnavailable | None:
    """The domain error for a transient failure of `service` while `doing`; None when it is not transient."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in THROTTLING_CODES or status == 429:
            return throttled(service=service, doing=doing)
        if code in SERVER_CODES or status >= 500:
            return _error(service, doing, f"failed ({code or status})", THROTTLED_RETRY_AFTER_S)
        return None
    if isinstance(error, BotocoreConnectionError | HTTPClientError):  # connect/read timeouts, resets
        return _error(service, doing, "did not answer in time", UNREACHABLE_RETRY_AFTER_S)
    return None


def throttled(*, service: str, doing: str) -> DependencyUnavailable:
    return _error(service, doing, "is throttling requests", THROTTLED_RETRY_AFTER_S)


def _error(service: str, doing: str, what: str, retry_after: int) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"could not {doing}: {service} {what} right now; try again in {retry_after} s", retry_after=retry_after
    )


@contextmanager
def dependency(service: str, doing: str) -> Iterator[None]:
    """Around an adapter's calls: transient botocore failures leave as DependencyUnavailable."""
    try:
        yield
    except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
        translated = unavailable(error, service=service, doing=doing)
        if translated is None:
            raise
        raise translated from error


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-item reasons of a TransactionCanceledException ("None" for the items that were fine)."""
    reasons: list[Any] = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code", "None")) for reason in reasons if isinstance(reason, dict)]
