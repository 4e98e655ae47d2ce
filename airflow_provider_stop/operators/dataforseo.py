"""DataForSEO On-Page: force-stop crawl tasks (1000 ids a call) and wait until they are finished."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.operators.base import ServiceBinding, StopOperatorBase


class DataForSeoBinding(ServiceBinding):
    """What every DataForSEO task class shares: the hook, the ids parameter, the connection."""

    hook_class_path = "airflow_provider_stop.hooks.dataforseo.DataForSeoHook"
    target_field = "crawl_task_ids"
    conn_id_field = "dataforseo_conn_id"


class DataForSeoStopOnPageTasksOperator(DataForSeoBinding, StopOperatorBase):
    """
    Force-stop On-Page crawl tasks and wait until each summary says ``crawl_progress: finished``.

    Any number of ids: duplicates are sent once, in calls of at most 1000. Returns per id the final
    state, ``details.crawl_stop_reason`` (``force_stopped`` confirms the stop), ``details.pages_crawled``
    and ``details.cost``. ``fail_on_partial_failure=False`` keeps going when some ids fail (unknown id,
    …) and reports those with their error.

    :param crawl_task_ids: one id or a list (templated).
    :param dataforseo_conn_id: the DataForSEO connection.
    """

    template_fields = ("crawl_task_ids", "dataforseo_conn_id")

    def __init__(
        self,
        *,
        crawl_task_ids: str | list[str],
        dataforseo_conn_id: str = "dataforseo_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crawl_task_ids = crawl_task_ids
        self.dataforseo_conn_id = dataforseo_conn_id
        self.check_parameters()
