"""The dict Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop import __version__

INTEGRATION = "Stop remote jobs"
SERVICES = ["feldera", "dataforseo", "rainforest", "amperity", "datasift"]


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
            "python-modules": [f"airflow_provider_stop.{layer}.{svc}" for svc in SERVICES],
        }
    ]


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
        "integrations": [{"integration-name": INTEGRATION, "tags": ["service"]}],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_stop.triggers.base"]}
        ],
        "config": {
            "stop_provider": {
                "description": (
                    "How deferrable stops hand over to the triggerer. Airflow can fail a deferred task "
                    "whose trigger fires within seconds of the deferral (apache/airflow issues 66374, "
                    "67287, 71580): these settings keep a fast stop off that race."
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
                },
            }
        },
        "notifications": [
            "airflow_provider_stop.notifications.feldera.FelderaStopPipelineNotifier",
            "airflow_provider_stop.notifications.dataforseo.DataForSeoStopOnPageTasksNotifier",
            "airflow_provider_stop.notifications.rainforest.RainforestStopCollectionNotifier",
            "airflow_provider_stop.notifications.amperity.AmperityStopWorkflowRunNotifier",
            "airflow_provider_stop.notifications.datasift.DataSiftStopSourceNotifier",
        ],
        "connection-types": [
            {
                "connection-type": "feldera",
                "hook-class-name": "airflow_provider_stop.hooks.feldera.FelderaHook",
                "hook-name": "Feldera",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Pipeline manager URL", "password": "API key"},
                    "placeholders": {
                        "host": "http://localhost:8080",
                        "password": "apikey:... (leave empty for a local server without auth)",
                    },
                },
                "conn-fields": {
                    "tenant": {
                        "label": "Tenant",
                        "description": "Sent as the Feldera-Tenant header (multi-tenant deployments only).",
                        "schema": {"type": ["string", "null"]},
                    },
                    **VERIFY_FIELD,
                },
            },
            {
                "connection-type": "dataforseo",
                "hook-class-name": "airflow_provider_stop.hooks.dataforseo.DataForSeoHook",
                "hook-name": "DataForSEO",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API URL", "login": "API login", "password": "API password"},
                    "placeholders": {
                        "host": "https://api.dataforseo.com (default)",
                        "login": "the API login from app.dataforseo.com",
                    },
                },
                "conn-fields": {
                    "sandbox": {
                        "label": "Use the sandbox",
                        "description": "Use the sandbox (free dummy data) when Host is empty.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "requests_per_second": {
                        "label": "Requests per second",
                        "description": "Pace of all calls to this account (the limit is 2000 a minute).",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    **VERIFY_FIELD,
                },
            },
            {
                "connection-type": "rainforest",
                "hook-class-name": "airflow_provider_stop.hooks.rainforest.RainforestHook",
                "hook-name": "Rainforest API (Traject Data)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "API URL", "password": "API key"},
                    "placeholders": {"host": "https://api.rainforestapi.com (default)"},
                },
                "conn-fields": {
                    "resource": {
                        "label": "Resource",
                        "description": "collections (Rainforest, BigBox, ...) or batches (SerpWow, ...)",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["collections", "batches", None],
                            # the UI lists None as "null" unless it is given a label
                            "values_display": {"null": "default (collections)"},
                        },
                    },
                    "path_prefix": {
                        "label": "Path prefix",
                        "description": "/live for SerpWow; empty for the others",
                        "schema": {"type": ["string", "null"], "pattern": "^(/[A-Za-z0-9_-]+)*$"},
                    },
                    **VERIFY_FIELD,
                },
            },
            {
                "connection-type": "amperity",
                "hook-class-name": "airflow_provider_stop.hooks.amperity.AmperityHook",
                "hook-name": "Amperity",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API URL (optional)",
                        "login": "OAuth client id",
                        "password": "Access token or client secret",
                    },
                    "placeholders": {
                        "host": "empty: from the region; or e.g. https://acme.amperity.com/api",
                        "login": "only for client credentials",
                    },
                },
                "conn-fields": {
                    "tenant": {
                        "label": "Tenant id",
                        "description": "Sent as amperity-tenant on every call, e.g. acme or acme-sb-12345.",
                        "schema": {
                            "type": ["string", "null"],
                            "pattern": "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
                        },
                    },
                    "region": {
                        "label": "Hosting",
                        "description": "aws (app.amperity.com), azure (<tenant>.amperity.com) or australia.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["aws", "azure", "australia", None],
                            "values_display": {"null": "default (aws)"},
                        },
                    },
                    "auth_type": {
                        "label": "Authentication",
                        "description": "token: an access token from the Amperity UI in the password. "
                        "client_credentials: OAuth client id (login) and secret (password).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["token", "client_credentials", None],
                            "values_display": {"null": "default (client_credentials when Login is set)"},
                        },
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "The api-version header, 2024-04-01 by default.",
                        "schema": {"type": ["string", "null"], "default": "2024-04-01"},
                    },
                    "token_url": {
                        "label": "Token URL",
                        "description": "Paste the Token endpoint shown with the client id and secret "
                        "(Settings > Security > API keys > Get OAuth credentials). Empty: "
                        "https://<tenant>.amperity.com/api/v0/oauth2/token, as documented.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "requests_per_second": {
                        "label": "Requests per second",
                        "description": "Pace of all calls to this tenant (the documented limit is 10).",
                        "schema": {"type": ["number", "null"], "default": 8},
                    },
                    **VERIFY_FIELD,
                },
            },
            {
                "connection-type": "datasift",
                "hook-class-name": "airflow_provider_stop.hooks.datasift.DataSiftHook",
                "hook-name": "DataSift",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API URL", "login": "Username", "password": "API key"},
                    "placeholders": {"host": "https://api.datasift.com (default)"},
                },
                "conn-fields": {
                    "api_version": {
                        "label": "API version",
                        "description": "The path version, v1.6 by default.",
                        "schema": {"type": ["string", "null"], "default": "v1.6", "pattern": "^v[0-9.]+$"},
                    },
                    "stop_form": {
                        "label": "Stop request form",
                        "description": "auto (default: whichever the server takes, remembered per host), "
                        "or only put_form (documented) or only post_json (what the official clients sent).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["auto", "put_form", "post_json", None],
                            "values_display": {"null": "default (auto)"},
                        },
                    },
                    **VERIFY_FIELD,
                },
            },
        ],
    }
