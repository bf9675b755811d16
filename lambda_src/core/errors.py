"""Domain errors. Handlers map them to HTTP in one place; adapters raise them, never ClientError."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `status` is the HTTP status the API answers with, `message` is for the user."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(DomainError):
    status = 400


class PayloadTooLarge(DomainError):
    status = 413


class Unauthorized(DomainError):
    status = 401


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class ModelUnavailable(DomainError):
    """No model target could answer in time; the caller may retry after `retry_after` seconds."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(DomainError):
    """Load shedding: every target's breaker is open, so answering now would only fail slowly."""

    status = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AtCapacity(Overloaded):
    """Load shedding under back-pressure: the targets are healthy but full (throttling), so the excess is
    refused at once instead of being queued or sent only to be throttled."""

    status = 429


class ModelRejected(DomainError):
    """The model refused the request as invalid (e.g. context window exceeded): not retryable."""

    status = 400


class TargetCallError(Exception):
    """One call to one model target failed; `code` is the runtime error code (or a transport one).

    Adapters raise it; the gateway classifies it with `core.resilience.classify`.
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.detail = message


class TooManyRequests(DomainError):
    """A per-user limit (request rate, open jobs) is reached; retry after `retry_after` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DependencyUnavailable(DomainError):
    """A store or queue (DynamoDB, SQS, S3) still failed after the client's retries: retry later."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after
