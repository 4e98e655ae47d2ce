"""THE registry of services: each service is declared once, and every list of services derives from it.

An entry is data: the service's name (the module name in every layer, and the connection type), its
display name, its target parameter and its connection form. Its classes name the service and register
themselves when their module is imported (``load``). Provider info, the emulators, the CLI, the demo,
the benchmarks and the shared test suites read this module; nothing else keeps a list.

Cheap to import (plain data): DAG files, Airflow's provider discovery and the task classes use it.
Adding a service: docs/adding-a-service.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PACKAGE = "airflow_provider_stop"
#: The layers a service has a module in, each ``<package>.<layer>.<service>``.
LAYERS = ("hooks", "operators", "sensors", "notifications", "links")


@dataclass(frozen=True)
class Service:
    """One service: its names, its target parameter and its connection form. Data only: the service's
    classes name their service (``class FelderaHook(StopServiceHook, service="feldera")``) and register
    themselves with ``register_class``; ``load`` finds them."""

    #: Module name in every layer, connection type, and ``<name>_conn_id`` / ``<name>_default``.
    name: str
    #: What messages call it (the hook's ``hook_name``).
    display_name: str
    #: The parameter (and task attribute) naming the targets, e.g. ``pipeline_name``.
    target_param: str
    #: Airflow's connection form: ``ui-field-behaviour`` and ``conn-fields`` (``VERIFY_FIELD`` is added).
    connection_form: Mapping[str, Any] = field(default_factory=dict)
    #: The connection type's label in Airflow's UI, when it says more than ``display_name``.
    conn_label: str | None = None
    #: Where the service's modules live, per layer (``testing`` for the emulator); by default
    #: ``airflow_provider_stop.<layer>.<name>``. Only a service defined outside the package sets it.
    modules: Mapping[str, str] = field(default_factory=dict)

    @property
    def conn_type(self) -> str:
        return self.name

    @property
    def conn_id_param(self) -> str:
        return f"{self.name}_conn_id"

    @property
    def default_conn_id(self) -> str:
        return f"{self.name}_default"

    def module(self, layer: str) -> str:
        return self.modules.get(layer, f"{PACKAGE}.{layer}.{self.name}")


#: The roles a service's classes play, and the layer (module) each is defined in.
ROLES: Mapping[str, str] = {
    "hook": "hooks",
    "emulator": "testing",
    "operator": "operators",
    "stop_all_operator": "operators",
    "sensor": "sensors",
    "notifier": "notifications",
    "link": "links",
}

_SERVICES: dict[str, Service] = {}
_CLASSES: dict[tuple[str, str], type] = {}


def register(service: Service) -> Service:
    """Add a service (the five below are added here; a test may add one of its own)."""
    if service.name in _SERVICES and _SERVICES[service.name] != service:
        raise ValueError(f"service {service.name!r} is already registered differently")
    _SERVICES[service.name] = service
    return service


def unregister(name: str) -> None:
    """Remove a service a test added, and its classes."""
    _SERVICES.pop(name, None)
    for key in [key for key in _CLASSES if key[0] == name]:
        del _CLASSES[key]


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_class(service: str, role: str, cls: type) -> None:
    """Called by the base classes when ``cls`` names its service. Only a class defined in the service's
    own module for that role registers (a user's subclass elsewhere does not replace it); two classes of
    one role in that module are an error."""
    entry = _SERVICES[service]
    if cls.__module__ != entry.module(ROLES[role]):
        return
    known = _CLASSES.get((service, role))
    if known is not None and class_path(known) != class_path(cls):
        raise ValueError(f"{service!r} has two {role} classes: {class_path(known)} and {class_path(cls)}")
    _CLASSES[(service, role)] = cls


def load(name: str, role: str) -> type[Any]:
    """The class playing ``role`` for service ``name``, importing its module (which registers it)."""
    entry = service(name)
    importlib.import_module(entry.module(ROLES[role]))
    try:
        return _CLASSES[(name, role)]
    except KeyError:
        raise LookupError(f"{entry.module(ROLES[role])} defines no {role} of service {name!r}") from None


def classes(name: str) -> dict[str, type[Any]]:
    """Every class of service ``name`` by role, importing each of its modules."""
    entry = service(name)
    for layer in dict.fromkeys(ROLES.values()):
        importlib.import_module(entry.module(layer))
    return {role: _CLASSES[(name, role)] for role in ROLES if (name, role) in _CLASSES}


def service(name: str) -> Service:
    return _SERVICES[name]


def services() -> Iterator[Service]:
    """Every registered service, in the order they were added."""
    return iter(list(_SERVICES.values()))


def provided() -> Iterator[Service]:
    """The services this package provides (its own modules): what Airflow, the emulator CLI, the demo
    and the benchmarks list. A service a test registers is in ``services()`` only."""
    return (svc for svc in services() if not svc.modules)


def names() -> list[str]:
    """Every registered service's name."""
    return list(_SERVICES)


def of_module(layer: str, module: str) -> Service | None:
    """The service whose ``layer`` module is ``module``."""
    return next((s for s in _SERVICES.values() if s.module(layer) == module), None)


for _service in (
    Service(
        name="feldera",
        display_name="Feldera",
        target_param="pipeline_name",
        connection_form={
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
                "requests_per_second": {
                    "label": "Requests per second",
                    "description": "Pace of all calls to this host and tenant (empty: unpaced; Feldera "
                    "documents no limit).",
                    "schema": {"type": ["number", "null"]},
                },
            },
        },
    ),
    Service(
        name="dataforseo",
        display_name="DataForSEO",
        target_param="crawl_task_ids",
        connection_form={
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
            },
        },
    ),
    Service(
        name="rainforest",
        display_name="Rainforest",
        conn_label="Rainforest API (Traject Data)",
        target_param="collection_id",
        connection_form={
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
            },
        },
    ),
    Service(
        name="amperity",
        display_name="Amperity",
        target_param="workflow_run_id",
        connection_form={
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
                    "description": "Sent as amperity-tenant on every call, e.g. acme or a sandbox "
                    "acme-sb-12345 (a sandbox uses its production tenant's hosts).",
                    "schema": {
                        "type": ["string", "null"],
                        "pattern": "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
                    },
                },
                "region": {
                    "label": "Hosting",
                    "description": "aws (app.amperity.com), azure (<production tenant>.amperity.com; "
                    "sandbox acme-sb-1 uses acme.amperity.com) or australia.",
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
                    "https://<production tenant>.amperity.com/api/v0/oauth2/token, as documented.",
                    "schema": {"type": ["string", "null"]},
                },
                "requests_per_second": {
                    "label": "Requests per second",
                    "description": "Pace of all calls to this tenant (the documented limit is 10).",
                    "schema": {"type": ["number", "null"], "default": 8},
                },
            },
        },
    ),
    Service(
        name="datasift",
        display_name="DataSift",
        target_param="source_id",
        connection_form={
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
                "requests_per_second": {
                    "label": "Requests per second",
                    "description": "Pace of all calls of this username (empty: unpaced; the hook follows "
                    "the credit budget the answers' headers report).",
                    "schema": {"type": ["number", "null"]},
                },
            },
        },
    ),
):
    register(_service)
