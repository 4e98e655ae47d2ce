"""The error hierarchy: permanent errors fail the task at once, transient ones use the task's retries.

Every error this provider raises derives from ``StopProviderError``; messages never contain a secret.
Cheap to import: operators and the retry policy use these names while a DAG file is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class StopProviderError(Exception):
    """Base of every error this provider raises. Messages never contain a secret."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        target_id: str | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target_id = target_id
        self.status_code = status_code
        self.error_code = error_code

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only attributes when the error is pickled (task runner, multiprocessing).
        return (_rebuild_error, (type(self), self.message, self.__dict__))


def _rebuild_error(cls: type[StopProviderError], message: str, state: dict[str, Any]) -> StopProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class PermanentStopError(StopProviderError):
    """Retrying cannot fix this (bad input, bad credentials, unknown target, refused stop)."""


class TransientStopError(StopProviderError):
    """Retrying may fix this (rate limit, outage, network, a deadline that passed)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InvalidInputError(PermanentStopError, ValueError):
    """A parameter is empty, malformed or of the wrong type; raised before any request."""


class AuthenticationError(PermanentStopError):
    """The service rejected the credentials (401) or their permissions (403)."""


class TargetNotFoundError(PermanentStopError):
    """The service does not know this target."""


class StopRejectedError(PermanentStopError):
    """The service refused the stop request itself (4xx other than auth / not found)."""


class FeatureUnavailableError(StopRejectedError):
    """The service does not offer the requested kind of stop (e.g. an enterprise-only option)."""


class TargetNotRunningError(PermanentStopError):
    """The target was not running and the caller asked for ``fail_if_not_running``."""


class TooManyTargetsError(PermanentStopError):
    """A stop-all matched more targets than its ``max_targets``; nothing was stopped."""


class PaymentRequiredError(PermanentStopError):
    """The account cannot pay for the call (balance, cost limit, subscription)."""


class StopFailedError(PermanentStopError):
    """The target reached its stopped state, but the service reports that the stop failed."""


class RateLimitedError(TransientStopError):
    """429 or the service's own rate-limit signal."""


class ServiceUnavailableError(TransientStopError):
    """5xx, connection refused or dropped, read timeout."""


class MalformedResponseError(TransientStopError):
    """The answer was not what the API documents (HTML error page, bad JSON, empty body)."""


class RequestDeadlineError(ServiceUnavailableError):
    """One request did not finish within its deadline (the hook's ``timeout``, or the wait's own
    deadline when that comes first), however the server paced its answer."""


class ResponseTooLargeError(MalformedResponseError):
    """The answer was larger than ``max_response_bytes``; it was not read further."""


class StopTimeoutError(TransientStopError):
    """The deadline passed while some targets were still not stopped."""

    def __init__(
        self,
        message: str,
        *,
        pending: Sequence[str] = (),
        statuses: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.pending = list(pending)
        #: The last status seen of every target (a ``TargetStatus`` by id), stopped or not.
        self.statuses = dict(statuses or {})


class BatchStopError(StopProviderError):
    """Some targets of a batch failed; ``failures`` names each one and why."""

    def __init__(
        self,
        message: str,
        *,
        failures: Mapping[str, StopProviderError],
        succeeded: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.failures = dict(failures)
        #: What did go through for the other targets (acks or statuses), keyed by id.
        self.succeeded = dict(succeeded or {})


class PermanentBatchStopError(BatchStopError, PermanentStopError):
    """Every failure in the batch is permanent."""


class TransientBatchStopError(BatchStopError, TransientStopError):
    """At least one failure may go away on retry (already-stopped targets stay stopped)."""


def batch_error(
    action: str,
    failures: Mapping[str, StopProviderError],
    total: int,
    succeeded: Mapping[str, Any] | None = None,
) -> BatchStopError:
    """One error naming every failed target, retryable when any single failure is."""
    lines = [f"{action} failed for {len(failures)} of {total} target(s):"]
    lines += [f"  - {tid!r}: {type(err).__name__}: {err}" for tid, err in failures.items()]
    cls = (
        TransientBatchStopError
        if any(err.retryable for err in failures.values())
        else PermanentBatchStopError
    )
    return cls("\n".join(lines), failures=failures, succeeded=succeeded)


def collect(action: str, results: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The results of a batch keyed by id; when any is an error, one error naming every failure."""
    done = {t: r for t, r in results if not isinstance(r, StopProviderError)}
    failures = {t: r for t, r in results if isinstance(r, StopProviderError)}
    if failures:
        raise batch_error(action, failures, len(results), done)
    return done


def error_class_path(exc: BaseException) -> str:
    """The dotted path an event stores for ``exc``: where its class is defined."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"
