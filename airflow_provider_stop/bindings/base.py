"""What operators, sensors and notifiers share: which hook, which targets, which connection
(``ServiceBinding``), and the provider's deferral settings.

Cheap to import (no HTTP library): every task class imports it while a DAG file is parsed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_stop import services
from airflow_provider_stop.hooks.data import TargetStatus
from airflow_provider_stop.hooks.errors import InvalidInputError, StopFailedError
from airflow_provider_stop.hooks.validation import normalize_target_ids

if TYPE_CHECKING:
    from airflow_provider_stop.hooks.base import StopServiceHook
    from airflow_provider_stop.triggers.wait import StopWaitTrigger

#: Extra time Airflow's own deferral timeout allows beyond our deadline, so the trigger's own,
#: clearer timeout error always comes first.
DEFERRAL_GRACE_SECONDS = 120.0


#: The Airflow config section of this provider's deployment-wide settings.
CONFIG_SECTION = "stop_provider"
#: Defaults of ``[stop_provider] wait_before_defer`` and ``trigger_min_delay`` (seconds); see
#: ``defer_settings``.
WAIT_BEFORE_DEFER_SECONDS = 5.0
TRIGGER_MIN_DELAY_SECONDS = 10.0


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` setting."""
    from airflow_provider_stop._compat import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def defer_settings() -> tuple[float, float]:
    """
    ``(wait_before_defer, trigger_min_delay)`` from ``[stop_provider]``, in seconds.

    Airflow (3.2 to 3.3 at least: apache/airflow issues 66374, 67287, 71580) fails a deferred task
    when its trigger fires before the scheduler has processed the executor's "success" for the
    deferring worker: the stale event then meets a task that is queued or running again. So a task
    first waits on the worker for up to ``wait_before_defer`` (a fast stop finishes there, with no
    deferral at all), and a trigger never fires sooner than ``trigger_min_delay`` after the deferral.
    """
    from airflow_provider_stop._compat import conf

    return (
        max(0.0, conf.getfloat(CONFIG_SECTION, "wait_before_defer", fallback=WAIT_BEFORE_DEFER_SECONDS)),
        max(0.0, conf.getfloat(CONFIG_SECTION, "trigger_min_delay", fallback=TRIGGER_MIN_DELAY_SECONDS)),
    )


#: How far before Airflow's ``execution_timeout`` the provider's own deadline falls (a share of it, at
#: most ``EXECUTION_TIMEOUT_MARGIN_MAX`` seconds): room for its error, which names the targets still
#: running, to be raised first, also by a task resumed on a worker after the triggerer's timeout event.
EXECUTION_TIMEOUT_MARGIN = 0.1
EXECUTION_TIMEOUT_MARGIN_MAX = 60.0


def task_deadline(
    context: Mapping[str, Any] | None, execution_timeout: timedelta | None, deadline: float
) -> float:
    """The one deadline of a task's wait, in place or deferred: the earlier of ``deadline`` (from the
    provider's ``timeout``) and what Airflow's ``execution_timeout`` leaves of this try (counted from
    the try's start), less the margin. Airflow itself does not apply ``execution_timeout`` while a
    task is deferred (3.x), so this is what makes it hold there too."""
    if not execution_timeout:
        return deadline
    ti = (context or {}).get("ti")
    start = getattr(ti, "start_date", None)
    started = start.timestamp() if isinstance(start, datetime) else time.time()
    return min(deadline, started + usable_seconds(execution_timeout))


def usable_seconds(execution_timeout: timedelta) -> float:
    """What ``execution_timeout`` leaves the provider's wait: all of it less the margin."""
    seconds = execution_timeout.total_seconds()
    return seconds - min(EXECUTION_TIMEOUT_MARGIN_MAX, EXECUTION_TIMEOUT_MARGIN * seconds)


def is_templated(value: Any) -> bool:
    return (isinstance(value, str) and "{{" in value) or (
        isinstance(value, list | tuple) and any(is_templated(v) for v in value)
    )


class ServiceBinding:
    """What operators, sensors and notifiers share: which hook, which targets, which connection."""

    #: The service's registry entry (``services.py``); ``class XBinding(ServiceBinding, service="x")``
    #: sets it and the two attributes below from it.
    service_info: ClassVar[services.Service]
    #: Attribute (and parameter) holding the target id(s), e.g. ``pipeline_name``.
    target_field: ClassVar[str]
    #: Attribute (and parameter) holding the connection id, e.g. ``feldera_conn_id``.
    conn_id_field: ClassVar[str]
    #: The role a task base class plays in the registry (``services.ROLES``): a concrete class defined
    #: in its service's module registers itself under it.
    service_role: ClassVar[str | None] = None

    def __init_subclass__(cls, *, service: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if service is not None:
            entry = services.service(service)
            cls.service_info = entry
            cls.target_field = entry.target_param
            cls.conn_id_field = entry.conn_id_param
        if cls.service_role and hasattr(cls, "service_info"):
            services.register_class(cls.service_info.name, cls.service_role, cls)

    @classmethod
    def hook_class(cls) -> type[StopServiceHook]:
        """The service's hook class (importing its module: at run time, never while a DAG is parsed)."""
        return services.load(cls.service_info.name, "hook")

    def service_label(self) -> str:
        """The service's name in messages: its registry display name."""
        return self.service_info.display_name

    hook_params: dict[str, Any]

    def target_ids(self) -> list[str]:
        return normalize_target_ids(getattr(self, self.target_field), self.target_field)

    def conn_id(self) -> str:
        value = getattr(self, self.conn_id_field)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{self.conn_id_field} must be a non-empty string, got {value!r}")
        return value

    def make_hook(self) -> StopServiceHook:
        return self.hook_class()(self.conn_id(), **self.hook_params)

    def stop_options(self) -> dict[str, Any]:
        """The service's own stop parameters (e.g. Feldera's ``force``)."""
        return {}

    def review_statuses(self, statuses: Mapping[str, TargetStatus]) -> dict[str, TargetStatus]:
        """Final statuses as the service's task class reports them (e.g. a graceful stop that ended
        forced); called after earlier errors are set apart, before errors fail the task."""
        return dict(statuses)

    def wait_trigger(
        self,
        target_ids: Sequence[str],
        poll_interval: float,
        deadline: float,
        resume: dict[str, Any] | None = None,
    ) -> StopWaitTrigger:
        from airflow_provider_stop.triggers.wait import StopWaitTrigger

        return StopWaitTrigger(
            hook_class_path=services.class_path(self.hook_class()),
            conn_id=self.conn_id(),
            target_ids=target_ids,
            poll_interval=poll_interval,
            deadline=deadline,
            hook_params=self.hook_params,
            resume=resume,
            not_before=time.time() + defer_settings()[1],
        )

    def check_parameters(self) -> None:
        """Fail at DAG-parse time on what is already known to be wrong."""
        value = getattr(self, self.target_field)
        if not is_templated(value):
            normalize_target_ids(value, self.target_field)
        if not is_templated(getattr(self, self.conn_id_field)):
            self.conn_id()


def check_stop_errors(service: str, noun: str, statuses: Mapping[str, TargetStatus]) -> None:
    """A target that reached its stopped state with an error is a failed stop: say which and why."""
    failed = {t: s for t, s in statuses.items() if s.error}
    if failed:
        lines = [f"{service}: {len(failed)} {noun}(s) stopped with an error:"]
        lines += [f"  - {t!r} ({s.raw_state}): {s.error}" for t, s in failed.items()]
        raise StopFailedError("\n".join(lines), target_id=next(iter(failed)))


def mark_prior_errors(
    statuses: Mapping[str, TargetStatus], prior: Mapping[str, str]
) -> dict[str, TargetStatus]:
    """An error a target already reported before the stop is not the stop's: it moves to
    ``details["prior_error"]``; an error the stop produced stays in ``error``."""
    marked: dict[str, TargetStatus] = {}
    for tid, status in statuses.items():
        before = prior.get(tid)
        if before:
            status = TargetStatus(
                status.target_id,
                status.raw_state,
                status.stopped,
                None if status.error == before else status.error,
                {**status.details, "prior_error": before},
            )
        marked[tid] = status
    return marked
