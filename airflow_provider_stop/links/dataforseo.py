"""DataForSEO: the account's API dashboard; DataForSEO publishes no page per On-Page task.

``https://app.dataforseo.com/api-dashboard`` is where the docs send users for their API credentials
(https://docs.dataforseo.com/v3/appendix/user_data/) and where the API's own cost-limit error sends them
to change a limit (https://dataforseo.com/update/daily-expenses-limits). The same dashboard serves the
sandbox's account, so the API host does not change it.
"""

from __future__ import annotations

from airflow_provider_stop.hooks.data import ClientConfig
from airflow_provider_stop.links.base import StopTargetLink

DASHBOARD_URL = "https://app.dataforseo.com/api-dashboard"


class DataForSeoDashboardLink(StopTargetLink, service="dataforseo"):
    """The account's API dashboard, for any number of crawl tasks."""

    name = "DataForSEO dashboard"

    def console_url(self, config: ClientConfig) -> str:
        return DASHBOARD_URL
