"""DataSift managed sources: stop sources (one, a list, or all running ones) and wait until stopped."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.datasift import DEFAULT_CONN_ID, DataSiftBinding
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.operators.stop_all import StopAllOperatorBase


class DataSiftStopSourceOperator(DataSiftBinding, StopOperatorBase):
    """
    Stop each source (``/v1.6/source/stop``) and wait until ``GET /v1.6/source/get`` says ``stopped``.

    The stop form follows the connection's ``stop_form``: by default whichever the server takes (PUT
    with a form body as documented, or POST with a JSON body as the official clients send; the other
    is tried once on 400/404/405 and remembered for the host).

    A 409 (not in a stoppable state) is confirmed with a GET and is success when the source is
    stopped, unless ``fail_if_not_running=True``. The hook waits for the credit budget to reset rather
    than spend a call that would be refused. Returns per id the final status (``details.name``,
    ``details.source_type``).

    :param source_id: one id or a list (templated).
    :param datasift_conn_id: the DataSift connection.
    """

    template_fields = ("source_id", "datasift_conn_id")

    def __init__(
        self, *, source_id: str | list[str], datasift_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source_id = source_id
        self.datasift_conn_id = datasift_conn_id
        self.check_parameters()


class DataSiftStopAllSourcesOperator(DataSiftBinding, StopAllOperatorBase):
    """Page through every source and stop each running one by id, optionally only of one
    ``source_type`` or whose name or id matches ``name_pattern`` (DataSift has no bulk stop)."""

    list_filter = "source_type"
    template_fields = ("name_pattern", "source_type", "datasift_conn_id")

    def __init__(
        self, *, source_type: str | None = None, datasift_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source_type = self.optional_filter(source_type, "source_type")
        self.datasift_conn_id = datasift_conn_id
        self.check_parameters()
