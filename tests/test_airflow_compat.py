"""What differs between Airflow 2.11 and 3.3, and how the provider degrades where a minor lacks a feature.

Run on every supported Airflow (``pytest -m airflow``): each test checks the running version's side,
and where it can, forces the other side too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import time
import types
from typing import Any

import pytest

from airflow_provider_stop import _compat, retry, services
from airflow_provider_stop.get_provider_info import get_provider_info
from airflow_provider_stop.hooks.feldera import FelderaHook
from tests.conftest import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS, use_connection


# ---- stop_retry_policy(): Airflow 3.3+ --------------------------------------------------------------
def test_stop_retry_policy_on_this_airflow() -> None:
    """3.3+: a policy; before: the clear error, not an ImportError from a missing retry-policy class."""
    if AIRFLOW_V_3_3_PLUS:
        assert type(retry.stop_retry_policy()).__name__ == "ExceptionRetryPolicy"
    else:
        with pytest.raises(retry.RetryPolicyUnavailableError, match=r"needs Airflow 3\.3"):
            retry.stop_retry_policy()


def test_stop_retry_policy_below_3_3_names_both_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow import __version__

    monkeypatch.setattr(retry, "AIRFLOW_V_3_3_PLUS", False)
    with pytest.raises(retry.RetryPolicyUnavailableError) as err:
        retry.stop_retry_policy()
    assert "Airflow 3.3" in str(err.value) and f"this is Airflow {__version__}" in str(err.value)
    # Airflow's own "optional feature missing" type, so callers can catch it as such
    assert isinstance(err.value, _compat.AirflowOptionalProviderFeatureException)


# ---- the notifier base: BaseNotifier takes context= only from 3.1 -----------------------------------
def test_notifier_builds_on_this_airflow() -> None:
    from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier

    notifier = FelderaStopPipelineNotifier(pipeline_name="p", force=True)
    assert notifier.pipeline_name == "p"
    assert hasattr(notifier, "async_notify") and callable(notifier.async_notify)


# ---- mask_secret: compat.sdk has it from common-compat 1.22 (Python 3.11+) ------------------------
def test_mask_secret_falls_back_to_airflows_own_when_compat_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 gets common-compat 1.20 at most, whose sdk has no mask_secret."""
    masked: list[str] = []
    if AIRFLOW_V_3_0_PLUS:
        monkeypatch.setattr("airflow.sdk.log.mask_secret", masked.append)
    else:
        monkeypatch.setattr("airflow.utils.log.secrets_masker.mask_secret", masked.append)
    monkeypatch.setitem(
        sys.modules, "airflow.providers.common.compat.sdk", types.ModuleType("old_compat_sdk")
    )
    _compat.mask_secret("s3cr3t-value")
    assert masked == ["s3cr3t-value"]


# ---- the async connection lookup (triggerer) ---------------------------------------------------------
@pytest.mark.parametrize("compat_has_async_extra", [True, False], ids=["compat", "compat-before-1.23"])
def test_async_config_reads_the_connection_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch, compat_has_async_extra: bool
) -> None:
    """``extra_dejson`` masks secrets with a synchronous supervisor call: on the event loop it can
    deadlock (3.3.2 raises DeadlockImminentError). The async path must never read it there, on any
    minor (2.11/3.0 have no ``aget_connection`` at all)."""
    use_connection(
        monkeypatch,
        "feldera_default",
        {"conn_type": "feldera", "host": "http://127.0.0.1:9", "extra": {"tenant": "acme"}},
    )
    conn_class = type(FelderaHook().get_connection("feldera_default"))
    plain: Any = inspect.getattr_static(conn_class, "extra_dejson")

    def guarded(conn: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return plain.fget(conn)
        raise AssertionError("extra_dejson was read on the event loop")

    monkeypatch.setattr(conn_class, "extra_dejson", property(guarded))
    if not compat_has_async_extra:  # what Python 3.10 gets (common-compat <= 1.20)
        import airflow.providers.common.compat.connection as compat_connection

        monkeypatch.delattr(compat_connection, "get_async_extra_dejson", raising=False)
        monkeypatch.setattr(_compat, "compat_lookup_is_loop_safe", lambda: False)

    config = asyncio.run(FelderaHook().aconfig())
    assert config.headers["Feldera-Tenant"] == "acme"
    assert config.base_url == "http://127.0.0.1:9/v0"


def test_a_thousand_triggers_read_the_compat_version_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trigger's connection lookup asks which common-compat is installed; reading package
    metadata costs a quarter of a millisecond, so a triggerer of a thousand waits asks once."""
    import importlib.metadata

    reads: list[str] = []
    real = importlib.metadata.version

    def counted(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counted)
    _compat.compat_lookup_is_loop_safe.cache_clear()
    try:
        answers = {_compat.compat_lookup_is_loop_safe() for _ in range(1000)}
    finally:
        _compat.compat_lookup_is_loop_safe.cache_clear()
    assert len(answers) == 1 and reads == ["apache-airflow-providers-common-compat"]


def test_a_batchs_threads_look_the_connection_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3's task-to-supervisor channel has no lock (3.0.6 even races in ``dag.test()``): the
    threads of one batch must not each look the connection up and register its secrets."""
    use_connection(monkeypatch, "feldera_default", {"conn_type": "feldera", "host": "http://127.0.0.1:9"})
    hook = FelderaHook()
    lookup = hook.get_connection
    lookups: list[str] = []

    def slow_lookup(conn_id: str) -> Any:
        lookups.append(conn_id)
        time.sleep(0.05)  # every thread is inside the property before the first lookup returns
        return lookup(conn_id)

    monkeypatch.setattr(hook, "get_connection", slow_lookup)
    results = hook._map(lambda tid: hook.config.base_url, [f"p{i}" for i in range(8)])
    assert {url for _, url in results} == {"http://127.0.0.1:9/v0"}
    assert lookups == ["feldera_default"]


# ---- connection forms: declarative (3.2+) and hook-level (2.11 to 3.1) ------------------------------
class _Field:
    """Stands in for a wtforms field: records what it was built with."""

    def __init__(
        self,
        label: str | None = None,
        validators: list[Any] | None = None,
        description: str = "",
        default: Any = None,
        widget: Any = None,
    ) -> None:
        self.label, self.validators, self.description, self.default = (
            label,
            validators or [],
            description,
            default,
        )


class _AnyOf:
    def __init__(self, values: list[Any]) -> None:
        self.values = values


class _Regexp:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern


@pytest.fixture
def recording_wtforms(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """wtforms and flask_appbuilder as recorders (they are absent from a plain Airflow 3)."""
    fields = {name: type(name, (_Field,), {}) for name in ("StringField", "IntegerField", "BooleanField")}
    wtforms = types.ModuleType("wtforms")
    vars(wtforms).update(fields)
    validators = types.ModuleType("wtforms.validators")
    vars(validators).update(Optional=type("Optional", (), {}), any_of=_AnyOf, Regexp=_Regexp)
    fab = types.ModuleType("flask_appbuilder")
    widgets = types.ModuleType("flask_appbuilder.fieldwidgets")
    vars(widgets).update(BS3TextFieldWidget=type("BS3TextFieldWidget", (), {}))
    for name, module in {
        "wtforms": wtforms,
        "wtforms.validators": validators,
        "flask_appbuilder": fab,
        "flask_appbuilder.fieldwidgets": widgets,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fields


def _hook_class(svc: services.Service) -> type:
    return services.load(svc.name, "hook")


@pytest.mark.parametrize("svc", list(services.provided()), ids=lambda s: s.name)
def test_hook_level_form_is_the_declared_form(
    svc: services.Service, recording_wtforms: dict[str, type]
) -> None:
    """What Airflow before 3.2 reads from the hook is what provider info declares for 3.2+.

    Known degradations (wtforms as Airflow 2.11 to 3.1 accept it): numbers are text fields (no float
    field is allowed), an enum's ``None`` is the empty choice, and ``values_display`` labels are not shown.
    """
    hook = _hook_class(svc)
    assert "get_connection_form_widgets" in vars(hook) and "get_ui_field_behaviour" in vars(hook)
    declared = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == svc.name)

    behaviour = declared["ui-field-behaviour"]
    assert hook.get_ui_field_behaviour() == {  # type: ignore[attr-defined]
        "hidden_fields": behaviour.get("hidden-fields", []),
        "relabeling": behaviour.get("relabeling", {}),
        "placeholders": behaviour.get("placeholders", {}),
    }

    widgets = hook.get_connection_form_widgets()  # type: ignore[attr-defined]
    assert set(widgets) == set(declared["conn-fields"])
    for name, spec in declared["conn-fields"].items():
        widget: Any = widgets[name]
        schema = spec["schema"]
        kinds = set(schema["type"]) - {"null"}
        assert (widget.label, widget.description) == (spec["label"], spec["description"]), name
        if kinds == {"boolean"}:
            assert type(widget) in recording_wtforms.values() and type(widget).__name__ == "BooleanField"
            assert widget.default == schema.get("default")
            continue
        assert type(widget).__name__ == ("IntegerField" if kinds == {"integer"} else "StringField")
        assert type(widget) in recording_wtforms.values()
        default = schema.get("default")
        assert widget.default == (
            None if default is None else str(default) if kinds == {"number"} else default
        )
        assert type(widget.validators[0]).__name__ == "Optional"  # every extra may be left empty
        enums = [v.values for v in widget.validators if isinstance(v, _AnyOf)]
        assert enums == ([[v for v in schema["enum"] if v is not None]] if "enum" in schema else [])
        patterns = [v.pattern for v in widget.validators if isinstance(v, _Regexp)]
        assert patterns == ([schema["pattern"]] if "pattern" in schema else [])


def _run(code: str) -> Any:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 only: its FAB UI builds the form itself")
def test_airflow_2_provider_manager_registers_the_hook_level_forms() -> None:
    """On 2.11 the connection form comes from the hook methods (read with FAB's real wtforms)."""
    got = _run(
        "import json; from airflow.providers_manager import ProvidersManager; pm = ProvidersManager(); "
        "print(json.dumps({'widgets': sorted(pm.connection_form_widgets), "
        "'behaviours': {k: v for k, v in pm.field_behaviours.items()}}))"
    )
    for conn in get_provider_info()["connection-types"]:
        ctype = conn["connection-type"]
        assert {f"extra__{ctype}__{name}" for name in conn["conn-fields"]} <= set(got["widgets"]), ctype
        assert got["behaviours"][ctype]["hidden_fields"] == conn["ui-field-behaviour"]["hidden-fields"]


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="the React UI's form metadata is Airflow 3's")
def test_airflow_3_ui_shows_every_extra_field_with_its_label() -> None:
    """``/ui/connections/hook_meta`` as the api-server builds it: 3.2+ from conn-fields; 3.1 from the
    hook methods with its own wtforms stand-ins; 3.0 from the hook methods only when FAB is installed."""
    if not AIRFLOW_V_3_1_PLUS:
        pytest.importorskip("flask_appbuilder", reason="Airflow 3.0 shows custom form fields only with FAB")
    got = _run(
        "import json; from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService; "
        "print(json.dumps({m.connection_type: {k: v['schema'].get('title') for k, v in "
        "(m.extra_fields or {}).items()} for m in HookMetaService.hook_meta_data()}))"
    )
    for conn in get_provider_info()["connection-types"]:
        labels = {name: field["label"] for name, field in conn["conn-fields"].items()}
        assert got[conn["connection-type"]] == labels, conn["connection-type"]
