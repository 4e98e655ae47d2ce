"""``e2e/forms.py``'s form-metadata check, against Airflow's own ``HookMetaService`` (no server, no browser).

``make e2e`` runs the same comparison on a live api-server's ``/ui/connections/hook_meta``; here it guards
the comparison itself: Airflow's rendering of our provider info matches, and every kind of drift is caught.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from e2e.forms import compare_hook_meta, expected_forms

HookMetaService = pytest.importorskip(
    "airflow.api_fastapi.core_api.services.ui.connections", reason="the React UI form metadata is Airflow 3's"
).HookMetaService

Payload = list[dict[str, Any]]


@pytest.fixture(scope="module")
def payload() -> Payload:
    """What the api-server's endpoint answers, as JSON (same models, same serialisation)."""
    return [m.model_dump(mode="json") for m in HookMetaService.hook_meta_data()]


def _meta(payload: Payload, conn_type: str) -> dict[str, Any]:
    return next(m for m in payload if m["connection_type"] == conn_type)


def test_airflow_shows_every_type_as_declared(payload: Payload) -> None:
    listed = {m["connection_type"] for m in payload}
    assert {f.conn_type for f in expected_forms()} == {
        "feldera",
        "dataforseo",
        "rainforest",
        "amperity",
        "datasift",
    }
    assert {f.conn_type for f in expected_forms()} <= listed
    assert compare_hook_meta(payload) == []


def _drop_type(p: Payload) -> None:
    p.remove(_meta(p, "datasift"))


def _relabel_host(p: Payload) -> None:
    _meta(p, "feldera")["standard_fields"]["host"]["title"] = "Host"


def _show_login(p: Payload) -> None:
    _meta(p, "rainforest")["standard_fields"]["login"] = None


def _change_placeholder(p: Payload) -> None:
    _meta(p, "dataforseo")["standard_fields"]["login"]["placeholder"] = "login"


def _undeclared_behaviour(p: Payload) -> None:
    _meta(p, "amperity")["standard_fields"]["description"] = {
        "hidden": True,
        "title": None,
        "placeholder": None,
    }


def _rename_extra(p: Payload) -> None:
    _meta(p, "amperity")["extra_fields"]["region"]["schema"]["title"] = "region"


def _drop_extra(p: Payload) -> None:
    del _meta(p, "datasift")["extra_fields"]["stop_form"]


def _change_description(p: Payload) -> None:
    _meta(p, "feldera")["extra_fields"]["tenant"]["description"] = "Tenant"


def _change_default(p: Payload) -> None:
    _meta(p, "dataforseo")["extra_fields"]["sandbox"]["schema"]["default"] = True


def _change_hook(p: Payload) -> None:
    _meta(p, "rainforest")["hook_name"] = "Rainforest"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_drop_type, "'datasift' is not listed"),
        (_relabel_host, "hook_meta[feldera].standard_fields.host"),
        (_show_login, "hook_meta[rainforest].standard_fields.login is None"),
        (_change_placeholder, "hook_meta[dataforseo].standard_fields.login"),
        (_undeclared_behaviour, "hook_meta[amperity].standard_fields.description"),
        (_rename_extra, "hook_meta[amperity].extra_fields.region is labelled 'region', expected 'Hosting'"),
        (_drop_extra, "hook_meta[datasift].extra_fields has"),
        (_change_description, "hook_meta[feldera].extra_fields.tenant.description is 'Tenant'"),
        (_change_default, "hook_meta[dataforseo].extra_fields.sandbox.schema.default is True"),
        (_change_hook, "hook_meta[rainforest].hook_name is 'Rainforest'"),
    ],
)
def test_drift_is_reported(payload: Payload, mutate: Callable[[Payload], None], expected: str) -> None:
    drifted = copy.deepcopy(payload)
    mutate(drifted)
    failures = compare_hook_meta(drifted)
    assert len(failures) == 1, failures
    assert expected in failures[0]
