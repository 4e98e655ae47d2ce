"""Generic "is it stopped yet?" sensor: poke, reschedule or deferrable, one timeout rule for all three."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_stop._compat import BaseSensorOperator, PokeReturnValue
from airflow_provider_stop.bindings.base import (
    DEFERRAL_GRACE_SECONDS,
    ServiceBinding,
    check_stop_errors,
    default_deferrable,
)
from airflow_provider_stop.events import raise_from_event, statuses_from_event

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context
    from airflow_provider_stop.hooks.data import TargetStatus


class StoppedSensorBase(ServiceBinding, BaseSensorOperator):
    """
    Wait until every target is stopped. It sends no stop.

    ``timeout`` counts from the sensor's first poke in every mode: Airflow applies it in poke and
    reschedule mode, and the deferrable mode hands the trigger the same absolute deadline. A timeout
    raises ``AirflowSensorTimeout``, so the task is not retried. Returns (XCom) the final status of
    each target, keyed by id. A target that stopped with an error fails the sensor unless
    ``fail_on_stop_error=False``.
    """

    ui_color = "#f6e3c9"
    service_role = "sensor"

    def __init__(
        self,
        *,
        deferrable: bool | None = None,
        poke_interval: float = 10.0,
        fail_on_stop_error: bool = True,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.fail_on_stop_error = fail_on_stop_error
        self.hook_params = dict(hook_params or {})

    def _done(self, statuses: dict[str, TargetStatus]) -> dict[str, Any]:
        if self.fail_on_stop_error:
            check_stop_errors(self.service_label(), self.target_field, statuses)
        return {t: s.to_dict() for t, s in statuses.items()}

    def poke(self, context: Context) -> PokeReturnValue:
        statuses = self.make_hook().get_statuses(self.target_ids())
        pending = [t for t, s in statuses.items() if not s.stopped]
        if pending:
            self.log.info("Not stopped yet: %s", ", ".join(f"{t}={statuses[t].raw_state}" for t in pending))
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._done(statuses))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        target_ids = self.target_ids()
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        deadline = time.time() + self.timeout
        self.defer(
            trigger=self.wait_trigger(target_ids, self.poke_interval, deadline),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") == "success":
            return self._done(statuses_from_event(event))
        if event.get("status") == "timeout":
            from airflow_provider_stop._compat import AirflowSensorTimeout

            raise AirflowSensorTimeout(str(event.get("message")))
        raise_from_event(event)
        raise AssertionError("unreachable")  # pragma: no cover
