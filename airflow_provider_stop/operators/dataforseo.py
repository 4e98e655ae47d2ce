"""DataForSEO On-Page: force-stop crawl tasks (1000 ids a call) and wait until they are finished."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.hooks.validation import validate_positive_number
from airflow_provider_stop.operators.base import ServiceBinding, StopOperatorBase

#: Default ``queued_grace`` of the operator and the notifier (seconds).
DEFAULT_QUEUED_GRACE = 300.0


class DataForSeoBinding(ServiceBinding, service="dataforseo"):
    """What every DataForSEO task class shares: the hook, the ids parameter, the connection."""

    hook_params: dict[str, Any]

    def set_queued_grace(self, queued_grace: float | None) -> None:
        """Hand ``queued_grace`` to the hook (and so to the trigger, which rebuilds the hook)."""
        grace = validate_positive_number(queued_grace, "queued_grace", allow_none=True)
        self.hook_params = {**self.hook_params, "queued_grace": grace}


#: ``dataforseo_default``, from the registry entry.
DEFAULT_CONN_ID = DataForSeoBinding.service_info.default_conn_id


class DataForSeoStopOnPageTasksOperator(DataForSeoBinding, StopOperatorBase):
    """
    Force-stop On-Page crawl tasks and wait until each summary says ``crawl_progress: finished``.

    Any number of ids: duplicates are sent once, in calls of at most 1000. Returns per id the final
    state, ``details.crawl_stop_reason`` (``force_stopped`` confirms the stop), ``details.pages_crawled``
    and ``details.cost``. ``fail_on_partial_failure=False`` keeps going when some ids fail (unknown id,
    …) and reports those with their error.

    An id force_stop refuses with a task code is checked with a summary read: a task that had already
    finished is success (unless ``fail_if_not_running=True``); one still queued counts as stopped once
    it is still queued ``queued_grace`` seconds into the wait (``raw_state`` ``in_queue``,
    ``details.never_started``). ``escalate_after`` sends force_stop once more to tasks still running
    then (e.g. a queued task that started crawling after all).

    :param crawl_task_ids: one id or a list (templated).
    :param dataforseo_conn_id: the DataForSEO connection.
    :param queued_grace: seconds a task may still be reported queued during the wait before it is
        taken for stopped (never started); ``None`` waits for ``finished`` however long (up to
        ``timeout``). Default 300.
    """

    template_fields = ("crawl_task_ids", "dataforseo_conn_id")

    def __init__(
        self,
        *,
        crawl_task_ids: str | list[str],
        dataforseo_conn_id: str = DEFAULT_CONN_ID,
        queued_grace: float | None = DEFAULT_QUEUED_GRACE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crawl_task_ids = crawl_task_ids
        self.dataforseo_conn_id = dataforseo_conn_id
        self.set_queued_grace(queued_grace)
        self.check_parameters()

    def escalation_options(self) -> dict[str, Any] | None:
        """force_stop has no stronger form: ``escalate_after`` sends it again to what still runs."""
        return {}
