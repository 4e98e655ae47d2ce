"""A service is declared once: the registry entry is data, each class names its service and registers
itself, and everything that needs a class (provider info, the trigger, the suites) finds it there."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import tests.extra_services  # noqa: F401 - registers the test-only services
from airflow_provider_stop import class_index, services
from airflow_provider_stop.get_provider_info import get_provider_info
from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
from airflow_provider_stop.triggers.wait import load_hook_class


def test_the_registry_entry_names_no_class() -> None:
    fields = {f.name for f in dataclasses.fields(services.Service)}
    assert fields == {"name", "display_name", "target_param", "connection_form", "conn_label", "modules"}


@pytest.mark.parametrize("service", services.names())
def test_every_service_has_its_classes_by_self_registration(service: str) -> None:
    found = services.classes(service)
    assert {"hook", "emulator", "operator", "sensor", "notifier"} <= set(found)
    for role, cls in found.items():
        assert cls.__module__ == services.service(service).module(services.ROLES[role])
        assert getattr(cls, "service_info", None) in (None, services.service(service))


def test_the_generated_class_index_matches_the_classes() -> None:
    """Stale after adding or renaming a class: run ``python -m airflow_provider_stop.class_index``."""
    assert class_index.current() == class_index.CLASSES


def test_provider_info_names_each_hook_and_notifier_from_the_index() -> None:
    info = get_provider_info()
    hooks = {c["connection-type"]: c["hook-class-name"] for c in info["connection-types"]}
    provided = [svc.name for svc in services.provided()]
    assert hooks == {name: services.class_path(services.load(name, "hook")) for name in provided}
    assert info["notifications"] == [services.class_path(services.load(n, "notifier")) for n in provided]


def test_a_users_subclass_does_not_replace_the_services_class() -> None:
    class MyStop(FelderaStopPipelineOperator):
        pass

    assert services.load("feldera", "operator") is FelderaStopPipelineOperator
    assert MyStop.hook_class() is services.load("feldera", "hook")


def test_two_classes_of_one_role_in_a_services_module_are_refused() -> None:
    hook_cls = services.load("toy", "hook")
    namespace: dict[str, Any] = {"__module__": hook_cls.__module__}
    with pytest.raises(ValueError, match="two hook classes"):
        type("SecondToyHook", (StopServiceHook,), namespace, service="toy")
    assert services.load("toy", "hook") is hook_cls


def test_the_trigger_loads_only_a_registered_services_own_hook() -> None:
    assert load_hook_class("airflow_provider_stop.hooks.feldera.FelderaHook") is services.load(
        "feldera", "hook"
    )
    for path in (
        "os.system",
        "airflow_provider_stop.hooks.feldera.GracefulStopRefusedError",
        "airflow_provider_stop.hooks.base.StopServiceHook",
        "tests.extra_services.toy.hook.ToyHookX",
    ):
        with pytest.raises(ValueError, match="refusing to load hook class"):
            load_hook_class(path)


def test_a_test_only_service_is_unregistered_with_its_classes() -> None:
    entry = services.service("toy")
    classes = services.classes("toy")
    services.unregister("toy")
    try:
        assert "toy" not in services.names()
        with pytest.raises(KeyError):
            services.service("toy")
    finally:
        services.register(entry)
        for role, cls in classes.items():
            services.register_class("toy", role, cls)
    assert services.load("toy", "hook") is classes["hook"]
