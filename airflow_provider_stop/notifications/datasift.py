"""DataSift managed sources: stop sources from ``on_failure_callback`` or a DeadlineAlert."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.datasift import DEFAULT_CONN_ID, DataSiftBinding
from airflow_provider_stop.notifications.base import StopNotifierBase


class DataSiftStopSourceNotifier(DataSiftBinding, StopNotifierBase):
    """Stop sources when a task fails or a deadline is missed; logs what it did, never raises."""

    template_fields = ("source_id", "datasift_conn_id")

    def __init__(
        self, *, source_id: str | list[str], datasift_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source_id = source_id
        self.datasift_conn_id = datasift_conn_id
        self.check_parameters()
