"""How a hook retries one request: tenacity's settings (backoff with jitter, ``Retry-After`` honoured,
never past the wait's deadline) and which errors a retry may fix."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_stop.hooks import bounds
from airflow_provider_stop.hooks.errors import StopTimeoutError, TransientStopError


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetrySettings:
    """How a hook retries transient failures of one request."""

    max_attempts: int = 5
    min_wait: float = 1.0
    max_wait: float = 60.0
    max_elapsed: float = 300.0

    def tenacity_kwargs(self, on_retry: Callable[[Any], None]) -> dict[str, Any]:
        import tenacity

        backoff = tenacity.wait_exponential(multiplier=self.min_wait, max=self.max_wait)
        jitter = backoff + tenacity.wait_random(0, self.min_wait)
        max_wait = self.max_wait

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            pause = min(float(retry_after), max_wait) if retry_after is not None else float(jitter(state))
            deadline = bounds.current_wait_deadline()
            return pause if deadline is None else max(0.0, min(pause, deadline - time.time()))

        class PastWaitDeadline(tenacity.stop.stop_base):
            def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
                deadline = bounds.current_wait_deadline()
                return deadline is not None and time.time() >= deadline

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_elapsed)
            | PastWaitDeadline(),
            "wait": wait,
            "retry": tenacity.retry_if_exception(retryable),
            "before_sleep": on_retry,
            "reraise": True,
        }


def retryable(exc: BaseException) -> bool:
    """Transient, and not already retried by a request of its own: a token fetch that failed after
    its retries is not retried again by each request that needed the token (one policy, not two
    multiplied)."""
    return (
        isinstance(exc, TransientStopError)
        and not isinstance(exc, StopTimeoutError)
        and not getattr(exc, "retries_spent", False)
    )
