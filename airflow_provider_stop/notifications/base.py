"""Stop targets from a callback: ``on_failure_callback`` (sync) or a DeadlineAlert (async, triggerer)."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_stop._compat import AIRFLOW_V_3_1_PLUS, BaseNotifier
from airflow_provider_stop.bindings.base import ServiceBinding, mark_prior_errors
from airflow_provider_stop.hooks.data import StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import BatchStopError, StopProviderError
from airflow_provider_stop.hooks.validation import validate_positive_number

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context
    from airflow_provider_stop.hooks.base import StopServiceHook


class StopNotifierBase(ServiceBinding, BaseNotifier):
    """
    Stop targets when called; never raises (a callback that raises hides the original failure).

    What it did is logged and kept in ``self.result``: ``{"stopped": {id: status}, "error": str | None}``.
    ``async_notify`` returns the same dict; awaiting the notifier (what Airflow's ``CallbackTrigger`` does
    for a DeadlineAlert) returns it as JSON text, because the triggerer stores that value in
    ``callback.output``, a text column: a dict there crashes the triggerer.
    """

    service_role = "notifier"

    def __init__(
        self,
        *,
        wait_for_completion: bool = False,
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        fail_if_not_running: bool = False,
        hook_params: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        # BaseNotifier takes the context from Airflow 3.1 (for DeadlineAlert callbacks); before, no argument.
        if AIRFLOW_V_3_1_PLUS:
            super().__init__(context=context)
        else:
            super().__init__()
        self.wait_for_completion = wait_for_completion
        self.poll_interval = validate_positive_number(poll_interval, "poll_interval") or 5.0
        self.timeout = validate_positive_number(timeout, "timeout") or 600.0
        self.fail_if_not_running = fail_if_not_running
        self.hook_params = dict(hook_params or {})
        self.result: dict[str, Any] = {}

    def _report(self, statuses: dict[str, TargetStatus], error: str | None) -> dict[str, Any]:
        self.result = {"stopped": {t: s.to_dict() for t, s in statuses.items()}, "error": error}
        if error:
            self.log.error("Could not stop everything: %s", error)
        else:
            self.log.info(
                "Stop sent%s: %s",
                " and confirmed" if self.wait_for_completion else "",
                ", ".join(f"{t}={s.raw_state or 'stop requested'}" for t, s in statuses.items()),
            )
        return self.result

    def _failure(
        self, hook: StopServiceHook | None, exc: Exception, statuses: dict[str, TargetStatus]
    ) -> dict[str, Any]:
        """Report a failure; targets a partly failed batch did stop are still reported as such."""
        if isinstance(exc, BatchStopError):
            for tid, done in exc.succeeded.items():
                statuses.setdefault(tid, done.as_status() if isinstance(done, StopAck) else done)
        text = str(exc) if isinstance(exc, StopProviderError) else f"{type(exc).__name__}: {exc}"
        return self._report(statuses, hook.redact(text) if hook is not None else text)

    def notify(self, context: Context) -> None:
        hook: StopServiceHook | None = None
        statuses: dict[str, TargetStatus] = {}
        try:
            target_ids = self.target_ids()
            hook = self.make_hook()
            prior = hook.prior_errors(target_ids) if self.wait_for_completion else {}
            acks = hook.stop_many(
                target_ids, fail_if_not_running=self.fail_if_not_running, **self.stop_options()
            )
            statuses = {t: a.as_status() for t, a in acks.items()}
            if self.wait_for_completion:
                statuses = hook.wait_until_stopped(
                    target_ids, poll_interval=self.poll_interval, deadline=time.time() + self.timeout
                )
                statuses = self.review_statuses(mark_prior_errors(statuses, prior))
        except Exception as exc:
            self._failure(hook, exc, statuses)
            return
        self._report(statuses, None)

    def __await__(self) -> Generator[Any, None, str]:  # type: ignore[override]
        result = yield from cast("Generator[Any, None, Any]", super().__await__())
        return json.dumps(result, default=str)

    async def async_notify(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        hook: StopServiceHook | None = None
        statuses: dict[str, TargetStatus] = {}
        try:
            target_ids = self.target_ids()
            hook = self.make_hook()
            async with hook.async_client() as client:
                prior = await hook.aprior_errors(client, target_ids) if self.wait_for_completion else {}
                acks = await hook.astop_many(
                    client, target_ids, fail_if_not_running=self.fail_if_not_running, **self.stop_options()
                )
                statuses = {t: a.as_status() for t, a in acks.items()}
                if self.wait_for_completion:
                    statuses = await hook.await_until_stopped(
                        client,
                        target_ids,
                        poll_interval=self.poll_interval,
                        deadline=time.time() + self.timeout,
                    )
                    statuses = self.review_statuses(mark_prior_errors(statuses, prior))
        except Exception as exc:
            return self._failure(hook, exc, statuses)
        return self._report(statuses, None)
