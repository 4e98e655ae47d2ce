"""Emulators of the services, for this package's tests and for users' offline DAG tests.

Importing this package imports no server code; use the service modules, e.g.
``from airflow_provider_stop.testing.feldera import FelderaEmulator``.
"""

from airflow_provider_stop import services

#: Service name -> dotted path of its emulator class, from the registry (``services.py``).
EMULATORS = {svc.name: svc.emulator_path for svc in services.provided()}
