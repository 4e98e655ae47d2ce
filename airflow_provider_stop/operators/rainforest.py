"""Rainforest API (Traject Data): stop one collection (or a list), or all of them, and wait until idle."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.rainforest import DEFAULT_CONN_ID, RainforestBinding
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.operators.stop_all import StopAllOperatorBase


class RainforestStopCollectionOperator(RainforestBinding, StopOperatorBase):
    """
    Stop a collection (or batch) and wait until its ``status`` is ``idle``.

    An ``idle`` collection cannot be stopped; that answer is confirmed with a GET and is success unless
    ``fail_if_not_running=True``. Returns per id the final status; ``details.stop_response`` on the
    stop answer says whether credits were refunded when the API says so (a queued collection).

    :param collection_id: one id or a list (templated).
    :param rainforest_conn_id: the connection (its extras pick collections or batches and a prefix).
    """

    template_fields = ("collection_id", "rainforest_conn_id")

    def __init__(
        self, *, collection_id: str | list[str], rainforest_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collection_id = collection_id
        self.rainforest_conn_id = rainforest_conn_id
        self.check_parameters()


class RainforestStopAllCollectionsOperator(RainforestBinding, StopAllOperatorBase):
    """
    Stop every queued or running collection, or only those whose name or id matches ``name_pattern``.

    The list (``GET /collections``, limited to 60 requests a minute and paced to it) is read page by
    page to know which collections to stop and wait for. Without ``name_pattern``: one
    ``GET /collections/stopall`` (it stops everything queued or running on the account). With it:
    each match is stopped by id (``GET /collections/{id}/stop``), since ``stopall`` takes no filter
    and would stop the others too. Waiting polls each with ``GET /collections/{id}``. Returns per id
    the final status; after ``stopall``, ``details.stop_options.stopped_count`` is the count the API
    reported.
    """

    target_field = "name_pattern"
    template_fields = ("name_pattern", "rainforest_conn_id")

    def __init__(self, *, rainforest_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rainforest_conn_id = rainforest_conn_id
        self.check_parameters()
