"""Rainforest API (Traject Data) and its sister products: the dashboard's list of collections (or
batches); Traject documents no page per collection.

Each product has its dashboard at ``app.<domain>`` beside its API at ``api.<domain>``: Rainforest's
docs link the dashboard's profile page ``https://app.rainforestapi.com/profile``
(https://docs.trajectdata.com/rainforestapi/collections-api/collections/webhook), SerpWow's its batch
editor ``https://app.serpwow.com/batches``
(https://docs.trajectdata.com/serpwow/batches-api/overview). Every product's overview says the same
("The <product> Dashboard also provides a visual editor for <Collections|Batches>"), so the list page
is ``https://app.<domain>/<collections|batches>``. A host outside the Traject products (a proxy, an
emulator) has no dashboard this can name: no link.
"""

from __future__ import annotations

import urllib.parse

from airflow_provider_stop.hooks.data import ClientConfig
from airflow_provider_stop.links.base import StopTargetLink

#: The products' domains (their APIs are ``api.<domain>``), from docs.trajectdata.com.
DOMAINS = frozenset(
    {
        "rainforestapi.com",
        "asindataapi.com",
        "bigboxapi.com",
        "countdownapi.com",
        "bluecartapi.com",
        "backyardapi.com",
        "redcircleapi.com",
        "serpwow.com",
        "scaleserp.com",
        "valueserp.com",
    }
)


class RainforestDashboardLink(StopTargetLink, service="rainforest"):
    """The product's dashboard page listing the account's collections (or batches)."""

    name = "Traject Data dashboard"

    def console_url(self, config: ClientConfig) -> str | None:
        host = urllib.parse.urlsplit(config.base_url).hostname or ""
        domain = host.removeprefix("api.")
        if host != f"api.{domain}" or domain not in DOMAINS:
            return None
        return f"https://app.{domain}/{config.settings.get('resource', 'collections')}"
