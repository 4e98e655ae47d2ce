"""DataSift: the account's data sources page; DataSift published no page per managed source.

The official clients send users to ``https://datasift.com/source`` to manage their data sources (the
READMEs of datasift/datasift-python and MeltwaterArchive/datasift-ruby); the managed sources are a
section of it ("Data Sources -> Managed Sources", http://dev.datasift.com/blog, "Using Managed
Sources"). DataSift is a legacy service: whether the page still answers is not known.
"""

from __future__ import annotations

from airflow_provider_stop.hooks.data import ClientConfig
from airflow_provider_stop.links.base import StopTargetLink

SOURCES_URL = "https://datasift.com/source"


class DataSiftSourcesLink(StopTargetLink, service="datasift"):
    """The account's data sources page, for any number of managed sources."""

    name = "DataSift data sources"

    def console_url(self, config: ClientConfig) -> str:
        return SOURCES_URL
