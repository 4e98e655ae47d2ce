"""Hook-level connection-form methods for Airflow before 3.2, generated from the declarative form.

Airflow 3.2+ reads a connection type's form from provider info (``conn-fields`` and
``ui-field-behaviour``, built in ``get_provider_info`` from the service registry). Airflow 2.11, 3.0
and 3.1 read only the hook's ``get_connection_form_widgets()`` / ``get_ui_field_behaviour()``, and only
when the concrete hook class defines them itself (``"get_connection_form_widgets" in
hook_class.__dict__``). ``install_form_methods`` puts both into each service hook's ``__dict__`` (from
``StopServiceHook.__init_subclass__``), built from the same declaration so the two forms cannot drift.
3.2+ skips them because the provider info already describes the form.

The widgets use only what every one of those versions accepts: ``StringField``, ``IntegerField`` and
``BooleanField`` (no float field: numbers are text, which ``rate_from_extra`` parses). wtforms and
flask_appbuilder are imported inside the method: they are absent from a plain 3.0/3.1 install, where
Airflow's UI substitutes its own stand-ins for them and the provider manager skips the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def declared_form(service_name: str) -> dict[str, Any]:
    """The connection type's entry in provider info (``conn-fields`` and ``ui-field-behaviour``)."""
    from airflow_provider_stop import services
    from airflow_provider_stop.get_provider_info import connection_form

    return connection_form(services.service(service_name))


def ui_field_behaviour(service_name: str) -> dict[str, Any]:
    """``ui-field-behaviour`` in the pre-3.2 spelling (underscores: ``hidden_fields``)."""
    behaviour = declared_form(service_name)["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type", "string")
    return {kind} if isinstance(kind, str) else set(kind)


def connection_form_widgets(service_name: str) -> dict[str, Any]:
    """One wtforms field per ``conn-fields`` entry: label, description, default, enum and pattern."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import Optional, Regexp, any_of

    widgets: dict[str, Any] = {}
    for name, spec in declared_form(service_name)["conn-fields"].items():
        schema: Mapping[str, Any] = spec.get("schema", {})
        types = _types(schema)
        label = spec.get("label", name)
        description = spec.get("description", "")
        default = schema.get("default")
        if "boolean" in types:
            widgets[name] = BooleanField(label, description=description, default=default)
            continue
        validators: list[Any] = [Optional()]
        if "enum" in schema:
            validators.append(any_of([value for value in schema["enum"] if value is not None]))
        if "pattern" in schema:
            validators.append(Regexp(schema["pattern"]))
        if "integer" in types:
            field_class: Any = IntegerField
        else:
            field_class = StringField
            default = None if default is None else str(default)
        widgets[name] = field_class(
            label,
            validators=validators,
            description=description,
            default=default,
            widget=BS3TextFieldWidget(),
        )
    return widgets


def install_form_methods(hook_class: type, service_name: str) -> None:
    """Give ``hook_class`` its own ``get_connection_form_widgets`` / ``get_ui_field_behaviour``."""

    def get_connection_form_widgets(cls: type) -> dict[str, Any]:
        """The connection form's extra fields (read by Airflow before 3.2)."""
        return connection_form_widgets(service_name)

    def get_ui_field_behaviour(cls: type) -> dict[str, Any]:
        """Hidden, relabelled and placeholder standard fields (read by Airflow before 3.2)."""
        return ui_field_behaviour(service_name)

    hook_class.get_connection_form_widgets = classmethod(get_connection_form_widgets)  # type: ignore[attr-defined]
    hook_class.get_ui_field_behaviour = classmethod(get_ui_field_behaviour)  # type: ignore[attr-defined]
