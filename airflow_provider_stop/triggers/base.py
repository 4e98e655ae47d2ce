"""The trigger's first home, kept because stored trigger rows name ``triggers.base.StopWaitTrigger``.

The waiter lives in ``triggers.wait``; ``load_hook_class`` in ``binding``; ``error_payload`` in ``events``.
"""

from airflow_provider_stop.binding import load_hook_class
from airflow_provider_stop.events import error_payload
from airflow_provider_stop.triggers.wait import StopWaitTrigger

__all__ = ["StopWaitTrigger", "error_payload", "load_hook_class"]
