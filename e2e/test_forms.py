"""Phase ``forms``: the connection forms as a user sees them on the running api-server (``e2e/forms.py``:
``/ui/connections/hook_meta`` and headless Chromium), screenshots in ``.e2e/forms/``."""

from __future__ import annotations

import shutil
import time

from e2e.driver import OUT, Driver


def test_connection_forms(driver: Driver) -> None:
    """connection forms (hook_meta + headless Chromium)"""
    from e2e import forms

    out_dir = OUT / "forms"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    headers = {"Authorization": f"Bearer {driver.dep.token()}"}
    started = time.monotonic()
    problems = forms.check_connection_forms(driver.dep.base_url, out_dir, headers)
    shots = len(list(out_dir.glob("*.png")))
    driver.figure(
        f"  connection forms: {time.monotonic() - started:.0f}s, {shots} screenshot(s) in {out_dir}"
    )
    assert not problems, "\n".join(problems)
