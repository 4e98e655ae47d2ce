"""Emulators of the services, for this package's tests and for users' offline DAG tests.

Importing this package imports no server code; use the service modules, e.g.
``from airflow_provider_stop.testing.feldera import FelderaEmulator``.
"""

EMULATORS = {
    "feldera": "airflow_provider_stop.testing.feldera.FelderaEmulator",
    "dataforseo": "airflow_provider_stop.testing.dataforseo.DataForSeoEmulator",
    "rainforest": "airflow_provider_stop.testing.rainforest.RainforestEmulator",
    "amperity": "airflow_provider_stop.testing.amperity.AmperityEmulator",
    "datasift": "airflow_provider_stop.testing.datasift.DataSiftEmulator",
}
