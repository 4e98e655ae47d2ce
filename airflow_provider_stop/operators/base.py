"""Generic stop operator: send the stop on the worker, then wait in place or deferred.

Importing this module is cheap (no HTTP library): hooks and triggers are imported when a task runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow_provider_stop import audit, metrics
from airflow_provider_stop._compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_3_PLUS,
    BaseOperator,
    airflow_version,
)
from airflow_provider_stop.bindings.base import (
    DEFERRAL_GRACE_SECONDS,
    ServiceBinding,
    check_stop_errors,
    default_deferrable,
    defer_settings,
    mark_prior_errors,
    task_deadline,
    usable_seconds,
)
from airflow_provider_stop.events import accept_partial, raise_from_event, statuses_from_event
from airflow_provider_stop.hooks.data import StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    InvalidInputError,
    StopTimeoutError,
    TransientStopError,
)
from airflow_provider_stop.hooks.validation import validate_positive_number
from airflow_provider_stop.links.base import TargetLinks
from airflow_provider_stop.operators.resume import StopJournal, StopRecord

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context
    from airflow_provider_stop.hooks.base import StopServiceHook

#: The trigger a task started in the triggerer runs (``start_from_trigger``); named, not imported, so a
#: DAG file's parse imports no trigger module.
START_TRIGGER = "airflow_provider_stop.triggers.start.StopStartTrigger"


class StopOperatorBase(TargetLinks, ServiceBinding, BaseOperator):
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
    :param hook_params: extra hook arguments (``request_timeout``, ``max_attempts``, retry waits).
    :param start_from_trigger: Airflow 3.3+: the task starts in the triggerer, which renders the target
        and connection fields, sends the stop and waits; a task whose targets all stop cleanly never
        takes a worker slot (``triggers.start``).
    """

    ui_color = "#f6c9c9"
    service_role = "operator"
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
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._starts_in_triggerer = start_from_trigger
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
        #: Target id -> its audit record (``audit``), kept through deferral and retries.
        self._audit: dict[str, dict[str, Any]] = {}
        #: For metrics: when the first stop was sent, and the requests sent on workers so far.
        self._sent_at = 0.0
        self._requests = 0
        #: The task's ``outlet_events`` accessors (Airflow's context), set when it runs.
        self._outlet_events: Any = None
        #: The task state store's record for retries (Airflow 3.3+; set when the task runs).
        self._journal = StopJournal(None, self.log)

    # ---- what a service may change ---------------------------------------------------------
    def escalation_options(self) -> dict[str, Any] | None:
        """Stop options for targets still running after ``escalate_after``; None: no escalation."""
        return None

    def resolve_targets(self, hook: StopServiceHook) -> list[str]:
        return [hook.validate_target(t) for t in self.target_ids()]

    def check_parameters(self) -> None:
        super().check_parameters()
        if self._starts_in_triggerer:
            self.start_trigger_args = self._start_trigger_args()
            self.start_from_trigger = True

    def _start_trigger_args(self) -> Any:
        """What the scheduler defers the task to (``triggers.start``): the target and connection fields
        under their own names, so the triggerer renders them, and the other parameters as plain data."""
        if not AIRFLOW_V_3_3_PLUS:
            raise InvalidInputError(
                "start_from_trigger needs Airflow 3.3 or later (the triggerer renders the task's "
                f"templates from 3.3); this is Airflow {airflow_version()}: use deferrable=True"
            )
        fields = {}
        for name in (self.target_field, self.conn_id_field):
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            if not (
                isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
            ):
                raise InvalidInputError(
                    f"start_from_trigger: {name} must be a string, a list of strings or a Jinja template "
                    f"(the triggerer renders it), got {type(value).__name__}; a value from another task "
                    "(an XComArg) needs the task to start on a worker"
                )
            fields[name] = value
        wait_seconds = self.timeout
        if self.execution_timeout:
            wait_seconds = min(wait_seconds, usable_seconds(self.execution_timeout))
        from airflow.triggers.base import StartTriggerArgs

        return StartTriggerArgs(
            trigger_cls=START_TRIGGER,
            next_method="execute_complete",
            trigger_kwargs={
                "service": self.service_info.name,
                "target_field": self.target_field,
                "conn_id_field": self.conn_id_field,
                "settings": {
                    "wait": self.wait_for_completion,
                    "wait_seconds": wait_seconds,
                    "poll_interval": self.poll_interval,
                    "fail_if_not_running": self.fail_if_not_running,
                    "fail_on_partial_failure": self.fail_on_partial_failure,
                    "stop_options": self.stop_options(),
                    "escalate_after": self.escalate_after,
                    "escalation_options": self.escalation_options(),
                    "hook_params": self.hook_params,
                    # asset events are emitted by a task that ends on a worker
                    "finish_on_worker": bool(self.outlets),
                },
                **fields,
            },
            timeout=timedelta(seconds=wait_seconds + DEFERRAL_GRACE_SECONDS),
        )

    # ---- the task --------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        with metrics.counting_timeouts(self.service_info.name):
            return self._run(context)

    def _run(self, context: Context) -> dict[str, Any]:
        self._outlet_events = context.get("outlet_events")
        target_ids = self.target_ids()  # bad input fails here, before the hook reads the connection
        hook = self.make_hook()
        target_ids = self.resolve_targets(hook)
        if not target_ids:
            self.log.info("Nothing to stop.")
            return {}
        self.persist_links(context, hook, target_ids)  # shown from now on: running, deferred or failed
        self._journal = StopJournal(context, self.log)
        record = self._journal.load()
        accepted = dict(record.accepted) if record else {}
        if accepted:
            self.log.info(
                "Retry: the stop of %s was accepted by an earlier try (not sent again); deadline and "
                "escalation kept from it",
                sorted(t for t in target_ids if t in accepted),
            )
        acks, failed = self._stop(hook, [t for t in target_ids if t not in accepted])
        sent_at = time.time()
        for tid, ack in acks.items():
            accepted[tid] = ack.as_status().to_dict()
            self._audit[tid] = audit.entry(context, accepted[tid], sent_at)
        if record is not None:
            self._audit = {**record.audit, **self._audit}
            self._sent_at = record.sent_at
        else:
            self._sent_at = sent_at
        target_ids = [t for t in target_ids if t in accepted]
        if not self.wait_for_completion:
            self._journal.forget()
            return {t: self._with_audit(accepted[t]) for t in target_ids} | failed
        if record is None:
            started = time.time()
            record = StopRecord(
                deadline=task_deadline(context, self.execution_timeout, started + self.timeout),
                escalate_at=(
                    started + self.escalate_after
                    if self.escalate_after is not None and self.escalation_options() is not None
                    else None
                ),
            )
        else:
            self._prior_errors = {**record.prior_errors, **self._prior_errors}
        record.accepted, record.prior_errors, record.audit = accepted, self._prior_errors, self._audit
        self._journal.save(record)
        if self.deferrable:
            return self._hand_over(
                hook, target_ids, record.deadline, record.escalate_at, done={}, failed=failed
            )
        return self._wait_in_place(hook, target_ids, record.deadline, record.escalate_at, failed)

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
        self._bank(hook)
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
            self._count_stops(exc.succeeded, refused=len(exc.failures))
            return accept_partial(exc, not self.fail_on_partial_failure, self.log)
        self._count_stops(acks, refused=0)
        return acks, {}

    def _count_stops(self, acks: Mapping[str, StopAck], refused: int) -> None:
        metrics.count_stops(self.service_info.name, acks, refused)

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
        self._bank(hook)
        return self._finish(statuses, failed)

    def _bank(self, hook: StopServiceHook) -> None:
        """Move the hook's request count into the task's (it travels through deferral)."""
        self._requests, hook.requests_sent = self._requests + hook.requests_sent, 0

    def _escalate(self, hook: StopServiceHook, pending: list[str]) -> dict[str, StopAck]:
        options = self.escalation_options() or {}
        self.log.warning(
            "%s still running after %ss: escalating the stop of %s with %s",
            hook.target_noun,
            self.escalate_after,
            pending,
            options,
        )
        acks = hook.stop_many(pending, **options)
        metrics.count(self.service_info.name, "escalations", len(acks))
        now = time.time()
        for tid in acks:
            self._audit[tid] = audit.escalated(self._audit.get(tid, {}), options, now)
        record = self._journal.load()
        if record is not None:  # a retry from here on waits; it does not escalate again
            record.escalate_at, record.escalated_at, record.escalation = None, now, options
            record.audit = self._audit
            self._journal.save(record)
        return acks

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
            "audit_records": self._audit,
            "sent_at": self._sent_at,
            "requests": self._requests,
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
        audit_records: dict[str, Any] | None = None,
        sent_at: float | None = None,
        requests: int = 0,
    ) -> dict[str, Any]:
        """Resume on the worker after the trigger: finish, escalate and defer again, or fail."""
        with metrics.counting_timeouts(self.service_info.name):
            return self._resume(
                context,
                event,
                deadline,
                escalate_at,
                done,
                failed,
                prior_errors,
                audit_records,
                sent_at,
                requests,
            )

    def _resume(
        self,
        context: Context,
        event: dict[str, Any],
        deadline: float | None,
        escalate_at: float | None,
        done: dict[str, Any] | None,
        failed: dict[str, Any] | None,
        prior_errors: dict[str, str] | None,
        audit_records: dict[str, Any] | None,
        sent_at: float | None,
        requests: int,
    ) -> dict[str, Any]:
        resume = event.get("resume") or {}
        self._outlet_events = context.get("outlet_events")
        self._sent_at = resume.get("sent_at", sent_at) or time.time()
        self._requests = int(resume.get("requests", requests) or 0)
        self._prior_errors = resume.get("prior_errors", prior_errors) or {}
        self._audit = resume.get("audit_records", audit_records) or {}
        deadline = resume.get("deadline", deadline)
        escalate_at = resume.get("escalate_at", escalate_at)
        done = resume.get("done", done)
        failed = resume.get("failed", failed) or {}
        statuses = {
            **{t: TargetStatus.from_dict(s) for t, s in (done or {}).items()},
            **statuses_from_event(event),
        }
        self._journal = StopJournal(context, self.log)
        self._push_links(context, resume.get("links"))
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
        self._journal.forget()
        service = self.service_info.name
        if self._sent_at:
            metrics.timing(service, "wait_duration", time.time() - self._sent_at)
        if statuses:
            metrics.distribution(service, "requests_per_stop", self._requests / len(statuses))
        result = {t: self._with_audit(s.to_dict()) for t, s in statuses.items()} | dict(failed)
        self._describe_outlets(result)
        return result

    def _describe_outlets(self, result: Mapping[str, Any]) -> None:
        """The asset events Airflow emits for the task's ``outlets`` name the targets it stopped and
        their final states (``extra``), for a DAG scheduled on the asset (Airflow 3.0+)."""
        if not self.outlets or self._outlet_events is None or not AIRFLOW_V_3_0_PLUS:
            return
        extra = {
            "service": self.service_info.name,
            "targets": {
                tid: {"state": s.get("raw_state"), "stopped": bool(s.get("stopped")), "error": s.get("error")}
                for tid, s in result.items()
            },
        }
        for outlet in self.outlets:
            if getattr(outlet, "uri", None) is not None:  # an asset (not an alias or a lineage object)
                self._outlet_events[outlet].extra.update(extra)

    def _with_audit(self, status: dict[str, Any]) -> dict[str, Any]:
        return audit.attach(status, self._audit)
