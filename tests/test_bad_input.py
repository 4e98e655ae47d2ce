"""Bad input, per service: every id is passed through exactly (the service finds that very target) or
refused before any request with a message naming the parameter; the same for types, templates,
hosts and Amperity tenants."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.errors import InvalidInputError, StopProviderError
from airflow_provider_stop.testing.base import Emulator
from tests.matrix import DRIVERS, HOOK, Driver

NASTY = ["/", "..", ".", "?", "#", "%", "%2F", "&", "+", ":", " ", "é", "ü", "中", "\x00", "\n", "\x7f", "\\"]
IDS = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from([*NASTY, "a", "b1", "-"]), max_size=8).map("".join),
    st.integers(min_value=1000, max_value=1100).map(lambda n: "x" * n),
)


@pytest.fixture(scope="module", params=list(DRIVERS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Driver, Emulator]]:
    drv = DRIVERS[request.param]
    key = f"AIRFLOW_CONN_{drv.service.upper()}_DEFAULT"
    with drv.make() as emu:
        old = os.environ.get(key)
        os.environ[key] = json.dumps(drv.connection(emu))
        yield drv, emu
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def operator(drv: Driver, value: Any, **kwargs: Any) -> Any:
    return drv.cls("operators", drv.operator)(
        task_id="stop",
        **{drv.target_field: value},
        **drv.options,
        hook_params=HOOK,
        poll_interval=0.05,
        timeout=10,
        **kwargs,
    )


def must_refuse(target_id: str) -> bool:
    """The documented rule: blank, a control character, over 1024 characters, or a rendered None."""
    return (
        not target_id.strip()
        or any(ord(c) < 32 or ord(c) == 127 for c in target_id)
        or len(target_id) > 1024
        or target_id in ("None", "null")
    )


def stop_exactly_or_refuse(drv: Driver, emu: Emulator, target_id: str) -> None:
    emu.reset_log()
    try:
        op = operator(drv, target_id)
    except InvalidInputError as exc:
        assert drv.target_field in str(exc)
        assert emu.count() == 0
        assert must_refuse(target_id), f"{target_id!r} was refused: {exc}"
        return
    assert not must_refuse(target_id), f"{target_id!r} was accepted"
    drv.add(emu, target_id)
    result = op.execute({})  # the stop, then the wait: both find exactly this target, or 404
    assert list(result) == [target_id] and result[target_id]["stopped"] is True
    assert drv.stops_handled(emu) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(target_id=IDS)
@example(target_id="../../admin")
@example(target_id="a/b?c=d#e%2F")
@example(target_id="..")
@example(target_id="")
@example(target_id="   ")
@example(target_id="tab\tid")
@example(target_id="x" * 1025)
@example(target_id="ünïcødé 中文")
@example(target_id="None")
@example(target_id="null")
@example(target_id="wf:stop")
def test_ids_pass_through_exactly_or_are_refused_before_any_request(
    served: tuple[Driver, Emulator], target_id: str
) -> None:
    drv, emu = served
    if emu.has_target(target_id):
        return  # hypothesis repeats itself; each id is one target
    stop_exactly_or_refuse(drv, emu, target_id)


@pytest.mark.parametrize("value", [5, 5.0, True, b"bytes", {"id": "a"}, ["a", 5], [], None, ["a", None]])
def test_values_of_the_wrong_type_are_refused_naming_the_parameter(
    served: tuple[Driver, Emulator], value: Any
) -> None:
    drv, emu = served
    emu.reset_log()
    with pytest.raises(InvalidInputError, match=drv.target_field):
        operator(drv, value)
    assert emu.count() == 0


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("{{ params.x }}", {"x": None}, None),
        ("{{ params.x | tojson }}", {"x": None}, None),
        ("{{ params.x }}", {"x": ""}, None),
        ("{{ params.x }}", {"x": ["t-a", "t-b"]}, ["t-a", "t-b"]),
        ("{{ params.x | tojson }}", {"x": ["t-a", "t-b", "t-a"]}, ["t-a", "t-b"]),
        ("{{ params.x | tojson }}", {"x": []}, None),
        ("{{ params.x }}", {"x": "t-c"}, ["t-c"]),
    ],
)
def test_templates_rendering_to_none_a_list_or_a_json_list(
    served: tuple[Driver, Emulator], template: str, params: dict[str, Any], expected: list[str] | None
) -> None:
    drv, emu = served
    prefix = f"{drv.service}-{abs(hash(template + json.dumps(params)))}-"
    rendered_params = {
        "x": [prefix + v for v in params["x"]] if isinstance(params["x"], list) else params["x"]
    }
    if isinstance(params["x"], str) and params["x"]:
        rendered_params["x"] = prefix + params["x"]
    op = operator(drv, template)
    op.render_template_fields({"params": rendered_params})
    emu.reset_log()
    if expected is None:
        with pytest.raises(InvalidInputError, match=drv.target_field):
            op.execute({})
        assert emu.count() == 0
        return
    ids = [prefix + e for e in expected]
    for tid in ids:
        drv.add(emu, tid)
    result = op.execute({})
    assert list(result) == ids and all(r["stopped"] for r in result.values())


@pytest.mark.parametrize(
    "host",
    ["ftp://example.com", "http://user:pw@127.0.0.1:1", "javascript:alert(1)", "http://", "https://:80"],
)
def test_a_host_that_is_not_an_http_url_is_refused_before_any_request(
    served: tuple[Driver, Emulator], monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    drv, emu = served
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{drv.service.upper()}_DEFAULT", json.dumps({**drv.connection(emu), "host": host})
    )
    emu.reset_log()
    with pytest.raises(InvalidInputError, match="host"):
        drv.hook().stop("t-host")
    assert emu.count() == 0


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(tenant=st.one_of(st.text(max_size=70), st.from_regex(r"[a-z0-9][a-z0-9-]{0,70}", fullmatch=True)))
@example(tenant="evil.com/x")
@example(tenant="acme.evil.com")
@example(tenant="acme\n")
@example(tenant="a@b")
def test_a_tenant_is_one_host_label_or_refused_naming_it(tenant: str) -> None:
    class Conn:
        conn_id = "amperity_default"
        host = None
        login = None
        password = "token-123456"
        schema = port = None
        extra_dejson = {"tenant": tenant, "region": "azure"}

    try:
        config = AmperityHook().build_config(Conn())  # type: ignore[arg-type]
    except InvalidInputError as exc:
        assert "tenant" in str(exc)
        return
    host = urllib.parse.urlsplit(config.base_url).hostname
    assert host == f"{tenant.lower()}.amperity.com"  # the host is exactly what it claims to be
    assert config.headers["amperity-tenant"] == tenant


def test_stop_provider_errors_from_bad_input_are_value_errors() -> None:
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidInputError, StopProviderError)
