"""The dict Airflow discovers through the ``apache_airflow_provider`` entry point.

Airflow calls it while ``import airflow`` loads its configuration, so it imports no class of this
package: the class names (hooks, notifiers, extra links) come from the generated ``class_index``."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop import __version__, services
from airflow_provider_stop.class_index import CLASSES

INTEGRATION = "Stop remote jobs"
#: The docs site; pyproject.toml's ``Documentation`` URL (which Airflow's providers view shows) and
#: mkdocs.yml's ``site_url`` name the same one (tests/test_packaging.py checks they agree).
DOCS_URL = "https://airflow-provider-stop.github.io/airflow-provider-stop/"


#: Every connection type offers the same TLS switch (``verify_from_extra`` reads it).
VERIFY_FIELD: dict[str, Any] = {
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Turn off only for a test server with a self-signed certificate.",
        "schema": {"type": ["boolean", "null"], "default": True},
    }
}


def _modules(layer: str) -> list[dict[str, Any]]:
    return [
        {
            "integration-name": INTEGRATION,
            "python-modules": [svc.module(layer) for svc in services.provided()],
        }
    ]


def _with(role: str) -> list[services.Service]:
    """The provided services whose ``role`` class is indexed (all, unless the index is being
    regenerated: ``import airflow`` calls this module while the classes are imported)."""
    return [svc for svc in services.provided() if role in CLASSES.get(svc.name, {})]


def _indexed(role: str) -> list[str]:
    return [CLASSES[svc.name][role] for svc in _with(role)]


def connection_form(svc: services.Service) -> dict[str, Any]:
    """The connection type's form: ``ui-field-behaviour`` and ``conn-fields`` (with the TLS switch)."""
    form = svc.connection_form
    return {
        "ui-field-behaviour": dict(form.get("ui-field-behaviour", {})),
        "conn-fields": {**form.get("conn-fields", {}), **VERIFY_FIELD},
    }


def _connection_type(svc: services.Service) -> dict[str, Any]:
    return {
        "connection-type": svc.conn_type,
        "hook-class-name": CLASSES[svc.name]["hook"],
        "hook-name": svc.conn_label or svc.display_name,
        **connection_form(svc),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-stop",
        "name": "Stop remote jobs",
        "description": (
            "Stop Feldera pipelines, DataForSEO On-Page crawl tasks, Rainforest API (Traject Data) "
            "collections, Amperity workflow runs and DataSift managed sources, and wait until they are "
            "stopped."
        ),
        "versions": [__version__],
        "integrations": [
            {"integration-name": INTEGRATION, "external-doc-url": DOCS_URL, "tags": ["service"]}
        ],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_stop.triggers.wait",
                    "airflow_provider_stop.triggers.start",
                    "airflow_provider_stop.on_kill",
                ],
            }
        ],
        "config": {
            "stop_provider": {
                "description": (
                    "How deferrable stops hand over to the triggerer (Airflow can fail a deferred task "
                    "whose trigger fires within seconds of the deferral, apache/airflow issues 66374, "
                    "67287, 71580: these settings keep a fast stop off that race), how large an answer "
                    "a hook reads, and where the processes of a deployment share each account's "
                    "documented rate limit."
                ),
                "options": {
                    "wait_before_defer": {
                        "description": (
                            "Seconds a deferrable stop waits on the worker after sending the stop; when "
                            "every target is stopped by then it finishes there, without deferring. "
                            "0 defers at once."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "5",
                        "default": "5",
                    },
                    "trigger_min_delay": {
                        "description": (
                            "Seconds after a deferral before its trigger may fire (it keeps polling, and "
                            "holds its event until then). Raise it when the scheduler is slow to process "
                            "executor events."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "10",
                        "default": "10",
                    },
                    "rate_limit_storage": {
                        "description": (
                            "A storage URI of the limits library (redis://, rediss://, redis+sentinel://, "
                            "redis+cluster://, memcached://, ...; pip install "
                            "'airflow-provider-stop[redis]' for the Redis ones). When set, every worker "
                            "and triggerer process of the deployment shares each account's documented "
                            "rate limit (keyed by service, host and account, never by process). Unset: "
                            "each process paces itself alone, so N processes may send N times the pace. "
                            "A storage that is down or slow never fails a stop: the process warns once "
                            "and paces itself alone."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "redis://redis:6379/1",
                        "default": None,
                    },
                    "max_response_bytes": {
                        "description": (
                            "The largest answer a hook reads from a service, in bytes (a page of 1,000 "
                            "targets is well under 2 MB); a larger one ends its request with "
                            "ResponseTooLargeError instead of filling a worker's or the triggerer's "
                            "memory. A hook's max_response_bytes argument overrides it."
                        ),
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "8388608",
                        "default": "8388608",
                    },
                    "rate_limit_storage_timeout": {
                        "description": (
                            "Seconds one call to rate_limit_storage may take before the process goes on "
                            "at its own pace (and asks the storage again 30 seconds later)."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "0.5",
                        "default": "0.5",
                    },
                },
            }
        },
        "notifications": _indexed("notifier"),
        "extra-links": _indexed("link"),
        "connection-types": [_connection_type(svc) for svc in _with("hook")],
    }
