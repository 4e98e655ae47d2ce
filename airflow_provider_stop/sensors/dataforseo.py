"""DataForSEO On-Page: wait until crawl tasks are finished."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.dataforseo import DEFAULT_CONN_ID, DataForSeoBinding
from airflow_provider_stop.sensors.base import StoppedSensorBase


class DataForSeoOnPageTasksStoppedSensor(DataForSeoBinding, StoppedSensorBase):
    """Wait until every crawl task's summary says ``crawl_progress: finished``."""

    template_fields = ("crawl_task_ids", "dataforseo_conn_id")

    def __init__(
        self,
        *,
        crawl_task_ids: str | list[str],
        dataforseo_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crawl_task_ids = crawl_task_ids
        self.dataforseo_conn_id = dataforseo_conn_id
        self.check_parameters()
