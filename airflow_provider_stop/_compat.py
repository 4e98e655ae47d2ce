"""The one place that names Airflow APIs whose home differs between Airflow 2.11 and 3.3.

Everything goes through the community compat provider (``apache-airflow-providers-common-compat``):
``compat.sdk`` maps each name to ``airflow.sdk`` on 3.x and to its ``airflow.models`` / ``airflow.*``
home on 2.11. Names are resolved lazily (PEP 562), so importing this module costs one small module
and DAG files pay only for the base classes they use.

Version flags: ``AIRFLOW_V_3_1_PLUS`` (``BaseNotifier`` takes ``context``, ``async_notify`` exists),
``AIRFLOW_V_3_2_PLUS`` (declarative ``conn-fields``), ``AIRFLOW_V_3_3_PLUS`` (retry policies).
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.module_loading import import_string
    from airflow.providers.common.compat.sdk import (
        AirflowOptionalProviderFeatureException,
        AirflowSensorTimeout,
        BaseHook,
        BaseNotifier,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        Connection,
        Context,
        PokeReturnValue,
        TaskDeferred,
        XCom,
        conf,
    )

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowOptionalProviderFeatureException",
    "AirflowSensorTimeout",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Connection",
    "Context",
    "PokeReturnValue",
    "TaskDeferred",
    "XCom",
    "airflow_version",
    "async_connection_extra",
    "conf",
    "get_async_connection",
    "import_string",
    "mask_secret",
]

_SDK = "airflow.providers.common.compat.sdk"
#: Where each lazily resolved name comes from.
_LAZY: dict[str, str] = {
    "AirflowOptionalProviderFeatureException": _SDK,
    "AirflowSensorTimeout": _SDK,
    "BaseHook": _SDK,
    "BaseNotifier": _SDK,
    "BaseOperator": _SDK,
    "BaseOperatorLink": _SDK,
    "BaseSensorOperator": _SDK,
    "Connection": _SDK,
    "Context": _SDK,
    "PokeReturnValue": _SDK,
    "TaskDeferred": _SDK,
    "XCom": _SDK,
    "conf": _SDK,
    "import_string": "airflow.providers.common.compat.module_loading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def airflow_version() -> str:
    """The running Airflow's version, for messages that say which version a feature needs."""
    from airflow import __version__

    return str(__version__)


def mask_secret(secret: str) -> None:
    """Ask Airflow's secrets masker to hide ``secret`` in task logs.

    ``compat.sdk.mask_secret`` exists from common-compat 1.22, which needs Python 3.11; with the
    compat release Python 3.10 can install (1.20 at most) this falls back to the same function's
    home on each Airflow: ``airflow.sdk.log`` on 3.x, the secrets masker module on 2.11.
    """
    try:
        from airflow.providers.common.compat.sdk import mask_secret as _mask
    except ImportError:
        if AIRFLOW_V_3_0_PLUS:
            from airflow.sdk.log import mask_secret as _mask
        else:
            from airflow.utils.log.secrets_masker import (  # type: ignore[no-redef,import-not-found,unused-ignore]
                mask_secret as _mask,
            )
    _mask(secret)


@functools.cache
def compat_lookup_is_loop_safe() -> bool:
    """common-compat 1.23+ never looks a connection up through a ``BaseHook.aget_connection`` that masks
    secrets synchronously on the event loop (Airflow 3.1 to 3.3.1). Asked once a process: reading the
    installed version parses package metadata (a quarter of a millisecond), and every trigger asks."""
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("apache-airflow-providers-common-compat")) >= Version("1.23.0")


async def get_async_connection(conn_id: str, *, hook: BaseHook) -> Connection:
    """The connection, looked up from an event loop (the triggerer, an async notifier).

    common-compat's ``get_async_connection`` does it on every Airflow: 2.11 and 3.0 have no
    ``aget_connection``, and from 1.23 it avoids the synchronous masking of 3.1 to 3.3.1. Python 3.10
    cannot install 1.23 (1.21+ need 3.11), so with an older release the lookup runs in a worker thread
    here, as 1.23 does, unless Airflow masks asynchronously itself (3.3.2+: ``aextra_dejson``).
    """
    if compat_lookup_is_loop_safe():
        from airflow.providers.common.compat.connection import get_async_connection as lookup

        return await lookup(conn_id, hook=hook)
    from airflow.providers.common.compat.sdk import Connection as connection_class

    if hasattr(connection_class, "aextra_dejson") and hasattr(hook, "aget_connection"):
        return await hook.aget_connection(conn_id=conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(hook.get_connection)(conn_id=conn_id)


async def async_connection_extra(conn: Connection) -> dict[str, Any]:
    """The connection's extra as a dict, read without blocking the event loop on secret masking.

    ``Connection.extra_dejson`` masks the extra's secrets with a synchronous call to the task
    supervisor, which on an event loop can deadlock (or, from Airflow 3.3.2, raise
    ``DeadlockImminentError``) while another async call is in flight. ``get_async_extra_dejson``
    (common-compat 1.21+, Python 3.11+) masks asynchronously on 3.3.2+ and otherwise reads in a worker
    thread; with an older compat release the worker thread is used here the same way.
    """
    try:
        from airflow.providers.common.compat.connection import get_async_extra_dejson
    except ImportError:
        import asyncio

        return dict(await asyncio.to_thread(lambda: conn.extra_dejson) or {})
    return dict(await get_async_extra_dejson(conn) or {})
