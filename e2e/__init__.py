"""``make e2e``: the provider under a real Airflow deployment, as a pytest suite (see ``e2e/conftest.py``).

Not collected by a plain ``pytest`` (``testpaths`` is ``tests``): it starts and stops real processes and takes
minutes, so it runs on its own.
"""
