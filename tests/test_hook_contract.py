"""The hook contract (``StopServiceHook``'s docstring): every registered service's hook overrides a
sync/async pair together or not at all, and fills in what the base leaves required."""

from __future__ import annotations

from typing import Any

import pytest

import tests.extra_services  # noqa: F401 - the test-only services keep the contract too
from airflow_provider_stop import services
from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.contract import EXTENSION_POINTS, SYNC_ASYNC_PAIRS


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
    hook = services.load(service, "hook")
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
    hook = services.load(service, "hook")
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


#: Set by ``__init_subclass__`` from the registry (and the form methods Airflow before 3.2 reads).
DECLARED = {"conn_name_attr", "default_conn_name", "conn_type", "hook_name", "target_param"}
FORM_METHODS = {"get_connection_form_widgets", "get_ui_field_behaviour"}


def outside_extension_points(hook: type) -> list[str]:
    """Names of the base a hook (or a mixin of its own between it and the base) redefines that are not
    documented extension points."""
    own = [c for c in hook.__mro__ if c is not StopServiceHook and issubclass(c, StopServiceHook)]
    mixins = [c for c in hook.__mro__[1 : hook.__mro__.index(StopServiceHook)] if c not in own]
    return sorted(
        {
            name
            for cls in own + mixins
            for name in vars(cls)
            if hasattr(StopServiceHook, name) and not name.startswith("__")
        }
        - EXTENSION_POINTS
        - DECLARED
        - FORM_METHODS
    )


@pytest.mark.parametrize("service", services.names())
def test_a_hook_overrides_only_documented_extension_points(service: str) -> None:
    hook = services.load(service, "hook")
    assert outside_extension_points(hook) == []


def test_the_extension_point_check_catches_a_private_override() -> None:
    class Sneaky(StopServiceHook):
        def _stop_chunk(self, *args: Any, **kwargs: Any) -> Any:
            return super()._stop_chunk(*args, **kwargs)

        def send(self, *args: Any, **kwargs: Any) -> Any:
            return super().send(*args, **kwargs)

    assert outside_extension_points(Sneaky) == ["_stop_chunk", "send"]


def test_every_extension_point_is_defined_by_the_base() -> None:
    assert sorted(name for name in EXTENSION_POINTS if not hasattr(StopServiceHook, name)) == []
