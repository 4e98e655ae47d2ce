"""Feldera: the pipeline's page in the web console, which the pipeline manager serves at its own URL.

The console is a single-page app at the root of the manager's URL (the API is under ``/v0``): the
manager registers the bundled console as its catch-all scope (``public_scope`` in
``crates/pipeline-manager/src/api/main.rs``) and the console has no base path (``svelte.config.js``).
Its pipeline page is the route ``/pipelines/[pipelineName]/`` (``js-packages/web-console/src/routes/
(system)/(authenticated)/(authorized)/(pipelines)/pipelines/[pipelineName]/``), which the console itself
links as ``/pipelines/${encodeURIComponent(name)}/``; its home page (``/``) lists the pipelines.
Source: github.com/feldera/feldera at 5c7931d09fc37e0976143e50a81169dbd98ec0cc.
"""

from __future__ import annotations

from airflow_provider_stop.hooks.data import ClientConfig, quote_segment
from airflow_provider_stop.links.base import StopTargetLink, without_path_suffix


class FelderaWebConsoleLink(StopTargetLink, service="feldera"):
    """One pipeline: its page in the web console; several: the console's pipeline list."""

    name = "Feldera web console"

    def console_url(self, config: ClientConfig) -> str:
        return without_path_suffix(config.base_url, "/v0") + "/"

    def target_url(self, config: ClientConfig, target_id: str) -> str:
        return f"{without_path_suffix(config.base_url, '/v0')}/pipelines/{quote_segment(target_id)}/"
