"""Domain errors carry their HTTP status; the app turns them into precise JSON bodies."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refusal the client can act on. `message` is shown to the client: never put secrets in it."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, keep_changes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        # commit what the transaction recorded anyway (the audit record of a refused login)
        self.keep_changes = keep_changes


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str = "authentication required", *, keep_changes: bool = False) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"}, keep_changes=keep_changes)


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Gone(DomainError):
    status_code = 410
    code = "gone"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class InvalidRequest(DomainError):
    """A well-formed request that breaks a business rule (payload shape errors are 422)."""

    status_code = 400
    code = "invalid_request"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "unavailable"
