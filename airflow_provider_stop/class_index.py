"""Where each provided service's classes live, for Airflow's provider info, which must name the hook
and notifier classes without importing them (provider discovery runs in every Airflow process).

Generated from the classes, which register themselves (``services.register_class``): after adding or
renaming a class, run ``python -m airflow_provider_stop.class_index``. A test fails when it is stale.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path

from airflow_provider_stop import services

# ruff: noqa: E501
# --- generated: do not edit below this line (python -m airflow_provider_stop.class_index) ---
CLASSES: dict[str, dict[str, str]] = {
    "feldera": {
        "hook": "airflow_provider_stop.hooks.feldera.FelderaHook",
        "emulator": "airflow_provider_stop.testing.feldera.FelderaEmulator",
        "operator": "airflow_provider_stop.operators.feldera.FelderaStopPipelineOperator",
        "stop_all_operator": "airflow_provider_stop.operators.feldera.FelderaStopAllPipelinesOperator",
        "sensor": "airflow_provider_stop.sensors.feldera.FelderaPipelineStoppedSensor",
        "notifier": "airflow_provider_stop.notifications.feldera.FelderaStopPipelineNotifier",
        "link": "airflow_provider_stop.links.feldera.FelderaWebConsoleLink",
    },
    "dataforseo": {
        "hook": "airflow_provider_stop.hooks.dataforseo.DataForSeoHook",
        "emulator": "airflow_provider_stop.testing.dataforseo.DataForSeoEmulator",
        "operator": "airflow_provider_stop.operators.dataforseo.DataForSeoStopOnPageTasksOperator",
        "sensor": "airflow_provider_stop.sensors.dataforseo.DataForSeoOnPageTasksStoppedSensor",
        "notifier": "airflow_provider_stop.notifications.dataforseo.DataForSeoStopOnPageTasksNotifier",
        "link": "airflow_provider_stop.links.dataforseo.DataForSeoDashboardLink",
    },
    "rainforest": {
        "hook": "airflow_provider_stop.hooks.rainforest.RainforestHook",
        "emulator": "airflow_provider_stop.testing.rainforest.RainforestEmulator",
        "operator": "airflow_provider_stop.operators.rainforest.RainforestStopCollectionOperator",
        "stop_all_operator": "airflow_provider_stop.operators.rainforest.RainforestStopAllCollectionsOperator",
        "sensor": "airflow_provider_stop.sensors.rainforest.RainforestCollectionStoppedSensor",
        "notifier": "airflow_provider_stop.notifications.rainforest.RainforestStopCollectionNotifier",
        "link": "airflow_provider_stop.links.rainforest.RainforestDashboardLink",
    },
    "amperity": {
        "hook": "airflow_provider_stop.hooks.amperity.AmperityHook",
        "emulator": "airflow_provider_stop.testing.amperity.AmperityEmulator",
        "operator": "airflow_provider_stop.operators.amperity.AmperityStopWorkflowRunOperator",
        "stop_all_operator": "airflow_provider_stop.operators.amperity.AmperityStopAllWorkflowRunsOperator",
        "sensor": "airflow_provider_stop.sensors.amperity.AmperityWorkflowRunStoppedSensor",
        "notifier": "airflow_provider_stop.notifications.amperity.AmperityStopWorkflowRunNotifier",
        "link": "airflow_provider_stop.links.amperity.AmperityAppLink",
    },
    "datasift": {
        "hook": "airflow_provider_stop.hooks.datasift.DataSiftHook",
        "emulator": "airflow_provider_stop.testing.datasift.DataSiftEmulator",
        "operator": "airflow_provider_stop.operators.datasift.DataSiftStopSourceOperator",
        "stop_all_operator": "airflow_provider_stop.operators.datasift.DataSiftStopAllSourcesOperator",
        "sensor": "airflow_provider_stop.sensors.datasift.DataSiftSourceStoppedSensor",
        "notifier": "airflow_provider_stop.notifications.datasift.DataSiftStopSourceNotifier",
        "link": "airflow_provider_stop.links.datasift.DataSiftSourcesLink",
    },
}
# --- end of generated ---


def current() -> dict[str, dict[str, str]]:
    """The index as the classes declare it (imports every provided service's modules)."""
    return {
        svc.name: {role: services.class_path(cls) for role, cls in services.classes(svc.name).items()}
        for svc in services.provided()
    }


def main() -> int:
    path = Path(__file__)
    text = path.read_text()
    head, rest = text.split("# --- generated", 1)
    _, tail = rest.split("# --- end of generated ---\n", 1)
    body = pprint.pformat(current(), width=100, sort_dicts=False)
    generated = (
        "# --- generated: do not edit below this line (python -m airflow_provider_stop.class_index) ---\n"
        f"CLASSES: dict[str, dict[str, str]] = {body}\n"
        "# --- end of generated ---\n"
    )
    path.write_text(head + generated + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
