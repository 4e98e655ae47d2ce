"""Amperity: the tenant's Amperity app; Amperity documents no URL for a workflow run's page.

The API is served under ``/api`` on the app's own host (``https://app.amperity.com/api`` for tenants on
AWS, ``https://{tenant-id}.amperity.com/api`` on Azure: ``amperity_api/source/base_url.rst`` in
github.com/amperity/amperity-docs), and the app is that host's root (the training labs start at
``https://app.amperity.com/``). A run is opened from the app's Workflows page ("Click the name of any
workflow run", ``amperity_reference/source/workflows.rst``), whose address the docs do not give.
"""

from __future__ import annotations

from airflow_provider_stop.hooks.data import ClientConfig
from airflow_provider_stop.links.base import StopTargetLink, without_path_suffix


class AmperityAppLink(StopTargetLink, service="amperity"):
    """The tenant's Amperity app (the API URL without ``/api``), for any number of runs."""

    name = "Amperity"

    def console_url(self, config: ClientConfig) -> str:
        return without_path_suffix(config.base_url, "/api") + "/"
