"""A ready ``retry_policy`` (Airflow 3.3+): errors a retry cannot fix fail at once, others use retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_stop._compat import AIRFLOW_V_3_3_PLUS, AirflowOptionalProviderFeatureException

if TYPE_CHECKING:
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy


#: Re-exported for DAG files: ``retry_policy=stop_retry_policy() if AIRFLOW_V_3_3_PLUS else None``.
__all__ = ["AIRFLOW_V_3_3_PLUS", "RetryPolicyUnavailableError", "stop_retry_policy"]


class RetryPolicyUnavailableError(AirflowOptionalProviderFeatureException):
    """``stop_retry_policy()`` on an Airflow older than 3.3, which has no retry policies."""


def stop_retry_policy() -> ExceptionRetryPolicy:
    """
    ``retry_policy=stop_retry_policy()`` on any task of this provider (or in ``default_args``).

    Unknown target, bad credentials, bad input, a refused stop, a stop that failed: fail now, because
    the next try would fail the same way. Rate limits, outages, timeouts: use the task's ``retries``.

    Retry policies came with Airflow 3.3: on an older Airflow this raises
    ``RetryPolicyUnavailableError`` (an ``AirflowOptionalProviderFeatureException``) naming the running
    version, before anything 3.3-only is imported. A DAG that must parse on older versions passes
    ``retry_policy=stop_retry_policy() if AIRFLOW_V_3_3_PLUS else None``.
    """
    from airflow_provider_stop._compat import airflow_version

    if not AIRFLOW_V_3_3_PLUS:
        raise RetryPolicyUnavailableError(
            f"stop_retry_policy() needs Airflow 3.3 or later (retry policies came with 3.3); this is "
            f"Airflow {airflow_version()}. Leave retry_policy unset and use the task's retries instead."
        )
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception="airflow_provider_stop.hooks.errors.PermanentStopError",
                action=RetryAction.FAIL,
                reason="not retryable: the service gave an answer that a retry cannot change",
            ),
            RetryRule(
                exception="airflow_provider_stop.hooks.errors.TransientStopError",
                action=RetryAction.RETRY,
                reason="transient: rate limit, outage or timeout",
            ),
        ]
    )
