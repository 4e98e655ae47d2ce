"""DataForSEO On-Page: force-stop crawl tasks from ``on_failure_callback`` or a DeadlineAlert."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.dataforseo import (
    DEFAULT_CONN_ID,
    DEFAULT_QUEUED_GRACE,
    DataForSeoBinding,
)
from airflow_provider_stop.notifications.base import StopNotifierBase


class DataForSeoStopOnPageTasksNotifier(DataForSeoBinding, StopNotifierBase):
    """Force-stop crawl tasks when a task fails or a deadline is missed; logs what it did, never raises.

    A task that had already finished counts as stopped; with ``wait_for_completion=True`` one still
    queued ``queued_grace`` seconds into the wait is taken for stopped (never started).
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
