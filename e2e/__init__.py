"""``make e2e``: the provider under a real Airflow deployment (see ``e2e/run.py``).

Not collected by ``pytest`` (it lives outside ``tests/``): it starts and stops real processes and takes
minutes, so it runs on its own.
"""
