"""The provider's connection forms as a user sees them, on a running Airflow api-server (issue 13).

Two checks, both derived from ``get_provider_info()`` (never from a hand-written copy):

1. ``GET /ui/connections/hook_meta`` (the metadata the React UI builds its form from) lists the five
   connection types with their relabelled, hidden and placeholder standard fields and their labelled
   extra fields.
2. A headless Chromium (the Debian package, driven by Playwright) goes Admin -> Connections -> Add
   Connection, picks each type and finds every labelled field in the rendered form. The form shows its
   standard and extra fields as an accordion, one section open at a time, so each type gets two PNGs:
   ``connection-form-<type>-1-standard.png`` and ``connection-form-<type>-2-extra.png``.

Auth: with ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True`` the api-server authorises every request
itself, so no headers are needed. Otherwise pass ``token_headers(base_url, user, password)`` (a JWT from
``POST /auth/token``); the browser then gets the same JWT as the ``_token`` cookie the UI reads.

Manual run: ``python -m e2e.forms http://127.0.0.1:8080 e2e-out/forms``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_stop.get_provider_info import get_provider_info

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = pathlib.Path("/usr/bin/chromium")
#: Needed on this machine (root, no network): no sandbox, no GPU, nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: provider-info spelling of a standard field -> its key in hook_meta's ``standard_fields``.
STANDARD_FIELDS = {
    "description": "description",
    "schema": "url_schema",
    "host": "host",
    "port": "port",
    "login": "login",
    "password": "password",
}
#: Tall enough that the Add Connection dialog with all of Amperity's extra fields fits the screenshot.
VIEWPORT = {"width": 1280, "height": 1700}


@dataclass(frozen=True)
class ExpectedForm:
    """What one connection type's form must show, read from ``get_provider_info()``."""

    conn_type: str
    hook_name: str
    hook_class_name: str
    hidden: frozenset[str]
    relabeling: dict[str, str]
    placeholders: dict[str, str]
    extra: dict[str, dict[str, Any]]


def expected_forms() -> list[ExpectedForm]:
    """The five connection types exactly as this provider declares them to Airflow."""
    forms = []
    for ct in get_provider_info()["connection-types"]:
        behaviour = ct.get("ui-field-behaviour", {})
        forms.append(
            ExpectedForm(
                conn_type=ct["connection-type"],
                hook_name=ct["hook-name"],
                hook_class_name=ct["hook-class-name"],
                hidden=frozenset(behaviour.get("hidden-fields", [])),
                relabeling=dict(behaviour.get("relabeling", {})),
                placeholders=dict(behaviour.get("placeholders", {})),
                extra=dict(ct.get("conn-fields", {})),
            )
        )
    return forms


def ensure_chromium() -> pathlib.Path:
    """Install Debian's ``chromium`` if it is missing (idempotent); return the binary's path."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        raise RuntimeError(f"{CHROMIUM} is missing: run `apt-get install -y chromium` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The lock timeout lets this wait for another apt run on the same machine instead of failing.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-qq"]
    subprocess.run([*apt, "update"], check=True, env=env)  # noqa: S603 (fixed arguments)
    install = [*apt, "install", "-y", "--no-install-recommends", "chromium"]
    subprocess.run(install, check=True, env=env)  # noqa: S603 (fixed arguments)
    if not CHROMIUM.exists():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def token_headers(base_url: str, username: str, password: str) -> dict[str, str]:
    """A JWT from SimpleAuthManager's ``POST /auth/token``, as request headers."""
    resp = httpx.post(
        f"{base_url.rstrip('/')}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    if resp.status_code != 201:
        raise RuntimeError(f"POST /auth/token answered {resp.status_code}")
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


# --- 1. the api-server's form metadata ---------------------------------------------------------------


def check_hook_meta(base_url: str, auth_headers: dict[str, str] | None = None) -> list[str]:
    """Compare ``/ui/connections/hook_meta`` with what the provider declares."""
    url = f"{base_url.rstrip('/')}/ui/connections/hook_meta"
    resp = httpx.get(url, headers=auth_headers or {}, timeout=60)
    if resp.status_code != 200:
        return [f"hook_meta: GET {url} answered {resp.status_code}: {resp.text[:300]}"]
    return compare_hook_meta(resp.json())


def compare_hook_meta(payload: list[dict[str, Any]]) -> list[str]:
    """Failures of one ``hook_meta`` answer against ``get_provider_info()`` (empty: it matches)."""
    by_type = {m.get("connection_type"): m for m in payload}
    failures: list[str] = []
    for form in expected_forms():
        meta = by_type.get(form.conn_type)
        if meta is None:
            failures.append(f"hook_meta: connection type {form.conn_type!r} is not listed")
            continue
        where = f"hook_meta[{form.conn_type}]"
        for key, want in (("hook_name", form.hook_name), ("hook_class_name", form.hook_class_name)):
            if meta.get(key) != want:
                failures.append(f"{where}.{key} is {meta.get(key)!r}, expected {want!r}")
        standard = meta.get("standard_fields") or {}
        for name, meta_key in STANDARD_FIELDS.items():
            got = standard.get(meta_key)
            declared = name in form.hidden or name in form.relabeling or name in form.placeholders
            if not declared:
                if got is not None:
                    failures.append(f"{where}.standard_fields.{meta_key} is {got!r}, declared nothing")
                continue
            want_field = {
                "hidden": name in form.hidden,
                "title": form.relabeling.get(name),
                "placeholder": form.placeholders.get(name),
            }
            if got != want_field:
                failures.append(f"{where}.standard_fields.{meta_key} is {got!r}, expected {want_field!r}")
        extra = meta.get("extra_fields") or {}
        if set(extra) != set(form.extra):
            failures.append(f"{where}.extra_fields has {sorted(extra)}, expected {sorted(form.extra)}")
        for key, field in form.extra.items():
            got_field = extra.get(key)
            if got_field is None:
                continue
            schema = got_field.get("schema") or {}
            if schema.get("title") != field["label"]:
                failures.append(
                    f"{where}.extra_fields.{key} is labelled {schema.get('title')!r}, "
                    f"expected {field['label']!r}"
                )
            if got_field.get("description") != field.get("description"):
                failures.append(
                    f"{where}.extra_fields.{key}.description is {got_field.get('description')!r}, "
                    f"expected {field.get('description')!r}"
                )
            for skey, sval in field.get("schema", {}).items():
                if schema.get(skey) != sval:
                    failures.append(
                        f"{where}.extra_fields.{key}.schema.{skey} is {schema.get(skey)!r}, expected {sval!r}"
                    )
    return failures


# --- 2. the React form in a headless Chromium ---------------------------------------------------------

#: One snapshot of every field in the dialog: its label, whether it is visible, its controls' names and
#: placeholders, and its helper text. Visibility is the browser's own (``checkVisibility``).
_SNAPSHOT_JS = """
dialog => [...dialog.querySelectorAll('[data-scope=field][data-part=root]')].map(root => {
  const label = root.querySelector('label[data-scope=field][data-part=label]');
  const controls = [...root.querySelectorAll('input, textarea')].filter(c => c.name);
  const helper = root.querySelector('[data-part=helper-text]');
  return {
    label: label ? label.textContent.trim() : null,
    visible: root.checkVisibility(),
    names: controls.map(c => c.name),
    placeholders: Object.fromEntries(controls.map(c => [c.name, c.getAttribute('placeholder') || ''])),
    helper: helper ? helper.textContent.trim() : null,
  };
})
"""


def _field(dialog: Locator, label: str) -> Locator:
    """The form field (Chakra ``Field.Root``) whose own label reads exactly ``label``."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return dialog.locator("[data-scope=field][data-part=root]").filter(
        has=dialog.page.locator("label[data-scope=field][data-part=label]", has_text=exact)
    )


def _open_section(dialog: Locator, title: str, other: str, timeout_ms: int) -> None:
    """Open one accordion section of the form and wait until the other one has finished closing.

    The form shows "Standard Fields" and "Extra Fields" as an accordion with one section open at a time;
    until the closing one is hidden its fields still count as visible, so a check would pass too early.
    """
    from playwright.sync_api import expect

    def content(trigger: Locator) -> Locator:
        # By the id the trigger controls: the UI's region ids contain a space, which breaks their
        # aria-labelledby, so the regions have no accessible name to find them by.
        return dialog.locator(f'[id="{trigger.get_attribute("aria-controls", timeout=timeout_ms)}"]')

    trigger = dialog.get_by_role("button", name=title, exact=True)
    if trigger.get_attribute("aria-expanded", timeout=timeout_ms) != "true":
        trigger.click(timeout=timeout_ms)
    expect(trigger).to_have_attribute("aria-expanded", "true", timeout=timeout_ms)
    expect(content(trigger)).to_be_visible(timeout=timeout_ms)
    others = dialog.get_by_role("button", name=other, exact=True)
    if others.count():
        expect(content(others)).to_be_hidden(timeout=timeout_ms)


def _check_section(
    dialog: Locator,
    form: ExpectedForm,
    section: str,
    labels: list[str],
    timeout_ms: int,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Wait for each labelled field of one section; return failures and a snapshot of shown fields."""
    from playwright.sync_api import expect

    failures: list[str] = []
    for label in labels:
        try:
            expect(_field(dialog, label)).to_be_visible(timeout=timeout_ms)
        except AssertionError:
            failures.append(f"UI form {form.conn_type}: no visible field labelled {label!r} in {section}")
    fields: list[dict[str, Any]] = dialog.evaluate(_SNAPSHOT_JS)
    return failures, [f for f in fields if f["visible"]]


def _check_one_form(page: Page, form: ExpectedForm, out_dir: pathlib.Path, timeout_ms: int) -> list[str]:
    """Open Add Connection, pick ``form``'s type, find its labelled fields, save the screenshots."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    where = f"UI form {form.conn_type}"
    page.get_by_role("button", name="Add Connection").click(timeout=timeout_ms)
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible(timeout=timeout_ms)
    dialog.get_by_role("combobox", name="Connection Type").fill(form.hook_name, timeout=timeout_ms)
    try:
        page.get_by_role("option", name=form.hook_name, exact=True).click(timeout=timeout_ms)
    except PlaywrightError:
        offered = page.get_by_role("option").all_inner_texts()
        page.reload(wait_until="domcontentloaded")  # back to the Connections list, no dialog
        return [f"{where}: type {form.hook_name!r} is not offered by the selector (it shows {offered})"]
    failures: list[str] = []

    # Standard fields: relabelled, with their placeholders, and the hidden ones absent.
    _open_section(dialog, "Standard Fields", "Extra Fields", timeout_ms)
    labels = [form.relabeling[n] for n in STANDARD_FIELDS if n in form.relabeling]
    found, shown = _check_section(dialog, form, "Standard Fields", labels, timeout_ms)
    failures += found
    by_label = {f["label"]: f for f in shown}
    for name, label in form.relabeling.items():
        field = by_label.get(label)
        if field is not None and name not in field["names"]:
            failures.append(f"{where}: field {label!r} edits {field['names']}, expected {name!r}")
    for name, placeholder in form.placeholders.items():
        field = next((f for f in shown if name in f["names"]), None)
        if field is None:
            failures.append(f"{where}: no visible {name!r} input for placeholder {placeholder!r}")
        elif field["placeholders"].get(name) != placeholder:
            failures.append(
                f"{where}: {name!r} shows placeholder {field['placeholders'].get(name)!r}, "
                f"expected {placeholder!r}"
            )
    shown_names = {n for f in shown for n in f["names"]}
    for name in sorted(form.hidden & {"host", "port", "login", "password", "schema"}):
        if name in shown_names:
            failures.append(f"{where}: {name!r} should be hidden but is shown")
    page.screenshot(
        path=str(out_dir / f"connection-form-{form.conn_type}-1-standard.png"), animations="disabled"
    )

    # Extra fields: every conn-field with its label, its own control and its description.
    if form.extra:
        _open_section(dialog, "Extra Fields", "Standard Fields", timeout_ms)
        labels = [f["label"] for f in form.extra.values()]
        found, shown = _check_section(dialog, form, "Extra Fields", labels, timeout_ms)
        failures += found
        by_label = {f["label"]: f for f in shown}
        for key, spec in form.extra.items():
            field = by_label.get(spec["label"])
            if field is None:
                continue
            if f"element_{key}" not in field["names"]:
                failures.append(
                    f"{where}: field {spec['label']!r} edits {field['names']}, expected extra {key!r}"
                )
            if spec.get("description") and field["helper"] != spec["description"]:
                failures.append(f"{where}: field {spec['label']!r} explains {field['helper']!r}")
        page.screenshot(
            path=str(out_dir / f"connection-form-{form.conn_type}-2-extra.png"), animations="disabled"
        )

    dialog.get_by_role("button", name="Close").click(timeout=timeout_ms)
    expect(dialog).to_have_count(0, timeout=timeout_ms)
    return failures


def _first_lines(exc: BaseException) -> str:
    """Playwright's message and the locator it was waiting for, without the long call log."""
    lines = [ln.strip().lstrip("- ") for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines[1:] if ln.startswith(("Locator:", "waiting for"))][:1]
    return " | ".join(lines[:1] + keep)


def _screenshot(page: Page, path: pathlib.Path) -> str:
    """Best effort: a failure's screenshot must not hide the failure itself."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.screenshot(path=str(path), full_page=True)
    except PlaywrightError:
        return ""
    return f" (see {path})"


def check_ui_forms(
    base_url: str,
    out_dir: pathlib.Path,
    auth_headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Admin -> Connections -> Add Connection for every type, in one headless Chromium."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        return ["UI forms: playwright is not installed (pip install -e '.[e2e]')"]
    chromium = ensure_chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    timeout_ms = int(timeout_s * 1000)
    failures: list[str] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="forms-chromium-") as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        try:
            bearer = (auth_headers or {}).get("Authorization", "")
            if bearer.startswith("Bearer "):
                # The UI reads its JWT from this cookie (what /auth/login would have set).
                ctx.add_cookies([{"name": "_token", "value": bearer[7:], "url": f"{base}/"}])
            page = ctx.new_page()
            page.set_default_timeout(timeout_ms)
            try:
                page.goto(f"{base}/", wait_until="domcontentloaded")
                admin = page.get_by_role("button", name="Admin")
                sign_in = page.get_by_role("button", name="Sign in")
                expect(admin.or_(sign_in).first).to_be_visible(timeout=timeout_ms)
                if sign_in.is_visible():
                    shot = _screenshot(page, out_dir / "connections-page-error.png")
                    return [f"UI at {page.url}: the api-server asks to sign in; pass auth_headers{shot}"]
                admin.click()
                page.get_by_role("menuitem", name="Connections").click()
                page.wait_for_url(re.compile(r"/connections/?$"))
                expect(page.get_by_role("button", name="Add Connection")).to_be_visible(timeout=timeout_ms)
            except (PlaywrightError, AssertionError) as exc:
                # A login page here means the api-server wants credentials: pass auth_headers.
                shot = _screenshot(page, out_dir / "connections-page-error.png")
                return [f"UI at {page.url}: {_first_lines(exc)}{shot}"]
            for form in expected_forms():
                try:
                    failures += _check_one_form(page, form, out_dir, timeout_ms)
                except (PlaywrightError, AssertionError) as exc:
                    shot = _screenshot(page, out_dir / f"connection-form-{form.conn_type}-error.png")
                    failures.append(f"UI form {form.conn_type}: {_first_lines(exc)}{shot}")
                    page.goto(f"{base}/connections", wait_until="domcontentloaded")
        finally:
            ctx.close()
    return failures


def check_connection_forms(
    base_url: str, out_dir: pathlib.Path, auth_headers: dict[str, str] | None = None
) -> list[str]:
    """Both checks; returns failure messages (empty: all good). Screenshots go to ``out_dir``."""
    return check_hook_meta(base_url, auth_headers) + check_ui_forms(base_url, out_dir, auth_headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("base_url", help="the api-server, e.g. http://127.0.0.1:8080")
    parser.add_argument("out_dir", type=pathlib.Path, help="where the screenshots go")
    parser.add_argument("--username", help="SimpleAuthManager user (not needed with all-admins)")
    parser.add_argument("--password", help="its password (default: $AIRFLOW_PASSWORD)")
    args = parser.parse_args(argv)
    headers = None
    if args.username:
        headers = token_headers(args.base_url, args.username, args.password or os.environ["AIRFLOW_PASSWORD"])
    started = time.monotonic()
    failures = check_connection_forms(args.base_url, args.out_dir, headers)
    for failure in failures:
        print(f"FAIL {failure}")
    shots = sorted(p.name for p in args.out_dir.glob("*.png")) if args.out_dir.exists() else []
    print(f"connection forms: {len(failures)} failures in {time.monotonic() - started:.1f}s; {shots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
