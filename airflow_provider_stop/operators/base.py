"""Generic stop operator: send the stop on the worker, then wait in place or deferred.

Importing this module is cheap (no HTTP library): hooks and triggers are imported when a task runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow_provider_stop._compat import BaseOperator
from airflow_provider_stop.bindings.base import (
    DEFERRAL_GRACE_SECONDS,
    ServiceBinding,
    check_stop_errors,
    default_deferrable,
    defer_settings,
    is_templated,
    mark_prior_errors,
)
from airflow_provider_stop.events import raise_from_event, statuses_from_event
from airflow_provider_stop.hooks.data import StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    InvalidInputError,
    StopTimeoutError,
    TransientStopError,
)
from airflow_provider_stop.hooks.validation import validate_positive_number

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context
    from airflow_provider_stop.hooks.base import StopServiceHook


class StopOperatorBase(ServiceBinding, BaseOperator):
    """
    Stop one target or a list, then (optionally) wait until all are stopped.

    Returns (XCom) a dict keyed by target id of the final status of each target:
    ``{"target_id", "raw_state", "stopped", "error", "details"}``. Without waiting, ``raw_state`` is
    ``None`` and ``details.stop_response`` holds the service's answer to the stop.

    :param wait_for_completion: wait until every target is stopped.
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    :param poll_interval: seconds between status checks.
    :param timeout: seconds from the stop to give up waiting (one absolute deadline for every mode).
    :param fail_if_not_running: fail when a target is already stopped (default: that is success).
    :param fail_on_stop_error: fail when a target stopped but the service reports an error.
    :param fail_on_partial_failure: when the stop of some targets fails, fail (after stopping all the
        others) — or, with ``False``, wait for the others and report the failed ones with their error.
    :param escalate_after: seconds after which targets still running get the service's stronger stop.
    :param hook_params: extra hook arguments (request ``timeout``, ``max_attempts``, retry waits).
    """

    ui_color = "#f6c9c9"
    #: The service's name for ``escalate_after`` in messages (Feldera calls it ``force_after``).
    escalation_param: ClassVar[str] = "escalate_after"

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        fail_if_not_running: bool = False,
        fail_on_stop_error: bool = True,
        fail_on_partial_failure: bool = True,
        escalate_after: float | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = validate_positive_number(poll_interval, "poll_interval") or 10.0
        self.timeout = validate_positive_number(timeout, "timeout") or 3600.0
        self.fail_if_not_running = fail_if_not_running
        self.fail_on_stop_error = fail_on_stop_error
        self.fail_on_partial_failure = fail_on_partial_failure
        self.escalate_after = validate_positive_number(escalate_after, self.escalation_param, allow_none=True)
        self.hook_params = dict(hook_params or {})
        #: Errors targets reported before the stop (``hook.prior_errors``), kept through deferral.
        self._prior_errors: dict[str, str] = {}

    # ---- what a service may change ---------------------------------------------------------
    def escalation_options(self) -> dict[str, Any] | None:
        """Stop options for targets still running after ``escalate_after``; None: no escalation."""
        return None

    def resolve_targets(self, hook: StopServiceHook) -> list[str]:
        return [hook.validate_target(t) for t in self.target_ids()]

    # ---- the task --------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        target_ids = self.target_ids()  # bad input fails here, before the hook reads the connection
        hook = self.make_hook()
        target_ids = self.resolve_targets(hook)
        if not target_ids:
            self.log.info("Nothing to stop.")
            return {}
        acks, failed = self._stop(hook, target_ids)
        target_ids = [t for t in target_ids if t in acks]
        if not self.wait_for_completion:
            return {**{t: ack.as_status().to_dict() for t, ack in acks.items()}, **failed}
        started = time.time()
        deadline = started + self.timeout
        escalate_at = (
            started + self.escalate_after
            if self.escalate_after is not None and self.escalation_options() is not None
            else None
        )
        if self.deferrable:
            return self._hand_over(hook, target_ids, deadline, escalate_at, done={}, failed=failed)
        return self._wait_in_place(hook, target_ids, deadline, escalate_at, failed)

    def _hand_over(
        self,
        hook: StopServiceHook,
        target_ids: list[str],
        deadline: float,
        escalate_at: float | None,
        done: dict[str, Any],
        failed: dict[str, Any],
    ) -> dict[str, Any]:
        """Finish on the worker if every target stops within ``wait_before_defer``; else defer the rest."""
        statuses, pending = self._wait_before_defer(hook, target_ids, deadline, escalate_at)
        done = {**done, **{t: s.to_dict() for t, s in statuses.items() if t not in pending}}
        if not pending:
            return self._finish({t: TargetStatus.from_dict(s) for t, s in done.items()}, failed)
        self._defer(pending, deadline, escalate_at, done=done, failed=failed)

    def _wait_before_defer(
        self, hook: StopServiceHook, target_ids: list[str], deadline: float, escalate_at: float | None
    ) -> tuple[dict[str, TargetStatus], list[str]]:
        """Wait on the worker up to ``[stop_provider] wait_before_defer``: a stop that is already done
        needs no triggerer (and is safe from Airflow's race with a trigger that fires at once)."""
        window = min(defer_settings()[0], self._phase_deadline(deadline, escalate_at) - time.time())
        if window <= 0:
            return {}, target_ids
        try:
            statuses = hook.wait_until_stopped(
                target_ids, poll_interval=min(self.poll_interval, 1.0), deadline=time.time() + window
            )
        except StopTimeoutError as exc:
            self.log.info("Still running after %.1fs on the worker: deferring %s", window, exc.pending)
            return exc.statuses, exc.pending
        except TransientStopError as exc:
            # The stop is sent; a read that failed for now (rate limited, unavailable) is the
            # trigger's to repeat, not a reason to fail the task.
            self.log.warning("Status read failed on the worker (%s): deferring %s", exc, target_ids)
            return {}, target_ids
        self.log.info("All stopped within %.1fs of the stop: finishing on the worker, no deferral.", window)
        return statuses, []

    def send_stops(self, hook: StopServiceHook, target_ids: list[str]) -> dict[str, StopAck]:
        return hook.stop_many(target_ids, fail_if_not_running=self.fail_if_not_running, **self.stop_options())

    def _stop(
        self, hook: StopServiceHook, target_ids: list[str]
    ) -> tuple[dict[str, StopAck], dict[str, Any]]:
        """Stop all; with ``fail_on_partial_failure=False`` go on with those accepted, reporting the rest."""
        self._prior_errors = hook.prior_errors(target_ids) if self.wait_for_completion else {}
        try:
            acks = self.send_stops(hook, target_ids)
        except BatchStopError as exc:
            if self.fail_on_partial_failure or not exc.succeeded:
                raise
            self.log.error("%s\nWaiting for the %d that were accepted.", exc, len(exc.succeeded))
            failed = {
                t: TargetStatus(t, None, False, f"{type(e).__name__}: {e}").to_dict()
                for t, e in exc.failures.items()
            }
            return dict(exc.succeeded), failed
        return acks, {}

    def _phase_deadline(self, deadline: float, escalate_at: float | None) -> float:
        return min(deadline, escalate_at) if escalate_at is not None else deadline

    def _wait_in_place(
        self,
        hook: StopServiceHook,
        target_ids: list[str],
        deadline: float,
        escalate_at: float | None,
        failed: dict[str, Any],
    ) -> dict[str, Any]:
        try:
            statuses = hook.wait_until_stopped(
                target_ids,
                poll_interval=self.poll_interval,
                deadline=self._phase_deadline(deadline, escalate_at),
            )
        except StopTimeoutError as exc:
            if escalate_at is None or escalate_at >= deadline:
                raise
            self._escalate(hook, exc.pending)
            rest = hook.wait_until_stopped(exc.pending, poll_interval=self.poll_interval, deadline=deadline)
            statuses = {**exc.statuses, **rest}
        return self._finish(statuses, failed)

    def _escalate(self, hook: StopServiceHook, pending: list[str]) -> dict[str, StopAck]:
        options = self.escalation_options() or {}
        self.log.warning(
            "%s still running after %ss: escalating the stop of %s with %s",
            hook.target_noun,
            self.escalate_after,
            pending,
            options,
        )
        return hook.stop_many(pending, **options)

    def _defer(
        self,
        target_ids: list[str],
        deadline: float,
        escalate_at: float | None,
        done: dict[str, Any],
        failed: dict[str, Any],
    ) -> NoReturn:
        phase_deadline = self._phase_deadline(deadline, escalate_at)
        # The state travels in the trigger's events, not only in defer kwargs: dag.test() drops those.
        resume = {
            "deadline": deadline,
            "escalate_at": escalate_at,
            "done": done,
            "failed": failed,
            "prior_errors": self._prior_errors,
        }
        self.defer(
            trigger=self.wait_trigger(target_ids, self.poll_interval, phase_deadline, resume),
            method_name="execute_complete",
            kwargs=resume,
            timeout=timedelta(seconds=max(0.0, phase_deadline - time.time()) + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        deadline: float | None = None,
        escalate_at: float | None = None,
        done: dict[str, Any] | None = None,
        failed: dict[str, Any] | None = None,
        prior_errors: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Resume on the worker after the trigger: finish, escalate and defer again, or fail."""
        resume = event.get("resume") or {}
        self._prior_errors = resume.get("prior_errors", prior_errors) or {}
        deadline = resume.get("deadline", deadline)
        escalate_at = resume.get("escalate_at", escalate_at)
        done = resume.get("done", done)
        failed = resume.get("failed", failed) or {}
        statuses = {
            **{t: TargetStatus.from_dict(s) for t, s in (done or {}).items()},
            **statuses_from_event(event),
        }
        if event.get("status") == "success":
            return self._finish(statuses, failed)
        if (
            event.get("status") == "timeout"
            and escalate_at is not None
            and deadline is not None
            and escalate_at < deadline
        ):
            pending = list(event.get("pending") or [])
            hook = self.make_hook()
            self._escalate(hook, pending)
            stopped = {t: s.to_dict() for t, s in statuses.items() if t not in pending}
            return self._hand_over(hook, pending, deadline, None, done=stopped, failed=failed)
        raise_from_event(event)
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish(self, statuses: Mapping[str, TargetStatus], failed: Mapping[str, Any]) -> dict[str, Any]:
        """Check and return the final statuses; targets whose stop failed are reported with the error."""
        statuses = self.review_statuses(mark_prior_errors(statuses, self._prior_errors))
        if self.fail_on_stop_error:
            check_stop_errors(self.service_label(), self.target_field, statuses)
        self.log.info("All stopped: %s", ", ".join(f"{t}={s.raw_state}" for t, s in statuses.items()))
        return {**{t: s.to_dict() for t, s in statuses.items()}, **failed}


class StopAllOperatorBase(StopOperatorBase):
    """Stop every target the service lists as running, optionally only names matching a glob."""

    target_field = "name_pattern"
    #: An operator parameter that narrows the service's list, handed to the hook under the same name
    #: (DataSift's ``source_type``, Amperity's ``workflow_type``).
    list_filter: ClassVar[str | None] = None

    def __init__(self, *, name_pattern: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if name_pattern is not None and not isinstance(name_pattern, str):
            raise InvalidInputError(f"name_pattern must be a glob string or None, got {name_pattern!r}")
        self.name_pattern = name_pattern

    @staticmethod
    def optional_filter(value: Any, param: str) -> str | None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInputError(f"{param} must be a non-empty string or None, got {value!r}")
        return value

    def execute(self, context: Context) -> dict[str, Any]:
        if self.list_filter and (value := getattr(self, self.list_filter)):
            # rendered by now; the hook (and the trigger) filter the list with it
            self.hook_params = {**self.hook_params, self.list_filter: value}
        return super().execute(context)

    def target_ids(self) -> list[str]:
        return []

    def check_parameters(self) -> None:
        if not is_templated(getattr(self, self.conn_id_field)):
            self.conn_id()

    def filtered(self) -> bool:
        """True when the list was narrowed (``name_pattern`` or the list filter): the hook then stops
        the matches by id, never with a service-wide stop that would reach the others too."""
        return bool(self.name_pattern) or bool(self.list_filter and getattr(self, self.list_filter))

    def send_stops(self, hook: StopServiceHook, target_ids: list[str]) -> dict[str, StopAck]:
        return hook.stop_all_targets(target_ids, filtered=self.filtered(), **self.stop_options())

    def resolve_targets(self, hook: StopServiceHook) -> list[str]:
        running = hook.running_targets(self.name_pattern or None)
        self.log.info(
            "%d running %s(s)%s: %s",
            len(running),
            hook.target_noun,
            f" matching {self.name_pattern!r}" if self.name_pattern else "",
            running,
        )
        return running
