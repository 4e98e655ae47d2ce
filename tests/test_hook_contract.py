"""The hook contract (``StopServiceHook``'s docstring): every registered service's hook overrides a
sync/async pair together or not at all, and fills in what the base leaves required."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

import tests.extra_services  # noqa: F401 - the test-only services keep the contract too
from airflow_provider_stop import services
from airflow_provider_stop.hooks.base import SYNC_ASYNC_PAIRS, StopServiceHook


def overridden(cls: type, name: str) -> bool:
    """Some class between ``cls`` and ``StopServiceHook`` defines ``name``."""
    for klass in cls.__mro__:
        if klass is StopServiceHook:
            return False
        if name in vars(klass):
            return True
    return False


def one_sided(cls: type) -> list[str]:
    return [
        f"{sync} without {async_}" if overridden(cls, sync) else f"{async_} without {sync}"
        for sync, async_ in SYNC_ASYNC_PAIRS
        if overridden(cls, sync) != overridden(cls, async_)
    ]


@pytest.mark.parametrize("service", services.names())
def test_a_hook_overrides_both_halves_of_a_pair_or_neither(service: str) -> None:
    hook = import_string(services.service(service).hook_path)
    assert one_sided(hook) == [], f"{hook.__name__}: {one_sided(hook)}"


def test_the_check_catches_a_hook_that_overrides_one_half() -> None:
    class Lopsided(StopServiceHook):
        def stop_many(self, *args: Any, **kwargs: Any) -> Any:
            return super().stop_many(*args, **kwargs)

    assert one_sided(Lopsided) == ["stop_many without astop_many"]


def test_every_pair_names_two_methods_of_the_base() -> None:
    for sync, async_ in SYNC_ASYNC_PAIRS:
        assert callable(getattr(StopServiceHook, sync)) and callable(getattr(StopServiceHook, async_))


@pytest.mark.parametrize("service", services.names())
def test_a_hook_fills_in_what_is_required(service: str) -> None:
    entry = services.service(service)
    hook = import_string(entry.hook_path)
    for name in ("build_config", "build_status_request", "parse_status_response", "build_test_request"):
        assert overridden(hook, name), f"{hook.__name__} does not implement {name}"
    if hook.stop_batch_size:
        assert overridden(hook, "build_batch_stop_request") and overridden(hook, "parse_batch_stop_response")
    else:
        assert overridden(hook, "build_stop_request")
    assert (hook.conn_type, hook.default_conn_name, hook.hook_name) == (
        entry.conn_type,
        entry.default_conn_id,
        entry.display_name,
    )
