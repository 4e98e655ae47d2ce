"""Emulators of the services, for this package's tests and for users' offline DAG tests.

Importing this package imports no server code; use the service modules, e.g.
``from airflow_provider_stop.testing.feldera import FelderaEmulator``.
"""

from airflow_provider_stop import services


def emulator_class(service: str) -> type:
    """The emulator class of a registered service (importing its module)."""
    return services.load(service, "emulator")
