"""What operators, sensors and notifiers share: which hook, which targets, which connection
(``ServiceBinding``), loading a hook class by its path, and the provider's deferral settings.

Cheap to import (no HTTP library): every task class imports it while a DAG file is parsed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
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


def is_templated(value: Any) -> bool:
    return (isinstance(value, str) and "{{" in value) or (
        isinstance(value, list | tuple) and any(is_templated(v) for v in value)
    )


class ServiceBinding:
    """What operators, sensors and notifiers share: which hook, which targets, which connection."""

    #: The service's registry entry (``services.py``); ``class XBinding(ServiceBinding, service="x")``
    #: sets it and the three attributes below from it.
    service_info: ClassVar[services.Service]
    #: Dotted path of the hook class (a string, so that parsing a DAG imports no HTTP code).
    hook_class_path: ClassVar[str]
    #: Attribute (and parameter) holding the target id(s), e.g. ``pipeline_name``.
    target_field: ClassVar[str]
    #: Attribute (and parameter) holding the connection id, e.g. ``feldera_conn_id``.
    conn_id_field: ClassVar[str]

    def __init_subclass__(cls, *, service: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if service is not None:
            entry = services.service(service)
            cls.service_info = entry
            cls.hook_class_path = entry.hook_path
            cls.target_field = entry.target_param
            cls.conn_id_field = entry.conn_id_param

    def service_label(self) -> str:
        """The service's name in messages: its registry display name."""
        entry = services.by_hook_path(self.hook_class_path)
        return entry.display_name if entry else self.hook_class_path.rsplit(".", 1)[-1].removesuffix("Hook")

    hook_params: dict[str, Any]

    def target_ids(self) -> list[str]:
        return normalize_target_ids(getattr(self, self.target_field), self.target_field)

    def conn_id(self) -> str:
        value = getattr(self, self.conn_id_field)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{self.conn_id_field} must be a non-empty string, got {value!r}")
        return value

    def make_hook(self) -> StopServiceHook:
        from airflow_provider_stop.triggers.wait import load_hook_class

        return load_hook_class(self.hook_class_path)(self.conn_id(), **self.hook_params)

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
            hook_class_path=self.hook_class_path,
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
