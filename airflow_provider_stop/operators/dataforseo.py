"""DataForSEO On-Page: force-stop crawl tasks (1000 ids a call) and wait until they are finished."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.dataforseo import DEFAULT_CONN_ID, DEFAULT_QUEUED_GRACE, DataForSeoBinding
from airflow_provider_stop.operators.base import StopOperatorBase


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
