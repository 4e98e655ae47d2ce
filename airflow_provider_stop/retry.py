"""A ready ``retry_policy`` (Airflow 3.3+): errors a retry cannot fix fail at once, others use retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy


def stop_retry_policy() -> ExceptionRetryPolicy:
    """
    ``retry_policy=stop_retry_policy()`` on any task of this provider (or in ``default_args``).

    Unknown target, bad credentials, bad input, a refused stop, a stop that failed: fail now, because
    the next try would fail the same way. Rate limits, outages, timeouts: use the task's ``retries``.
    """
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception="airflow_provider_stop.hooks.base.PermanentStopError",
                action=RetryAction.FAIL,
                reason="not retryable: the service gave an answer that a retry cannot change",
            ),
            RetryRule(
                exception="airflow_provider_stop.hooks.base.TransientStopError",
                action=RetryAction.RETRY,
                reason="transient: rate limit, outage or timeout",
            ),
        ]
    )
