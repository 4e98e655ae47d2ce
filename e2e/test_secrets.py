"""Phase ``secrets``: a Feldera key with its newline (``feldera_newline``) is refused, naming the field; a
service that echoes the key (``feldera_echo``) fails both a task in place and a deferred one with its
error; then no connection secret in any log, component output, rendered field, XCom or REST log of any run
the session started (the sweep needs the other phases' runs: every service must have been reached)."""

from __future__ import annotations

import json
import re
import time

from e2e.driver import OUT, RUN_TIMEOUT, Driver


def test_hostile_keys(driver: Driver) -> None:
    """secrets: a key with its newline refused, an echoed key in no log (in place, deferred)

    A key with its newline is refused when the connection is read (the task fails, its log names the
    password field); a service that echoes the key fails a task in place and a deferred one (the error
    from the triggerer) with its error, and their logs hold no form of the key."""
    started = time.monotonic()
    echo = driver.emu.feldera_echo
    in_place, deferred = "echo_in_place", "echo_deferred"
    for pipeline in (in_place, deferred):
        echo.add_pipeline(pipeline)
    echo.hold_stopping.add(deferred)  # the worker's wait before deferring sees it Stopping
    # Every request for in_place's pipeline echoes; deferred's status reads echo once it is deferred.
    echo.inject("echo", status=400, path=f"/v0/pipelines/{in_place}*", times=10**9)
    runs = {}
    for dag_id in ("e2e_newline_key", "e2e_echo_key"):
        driver.unpause(dag_id)
        runs[dag_id] = driver.trigger(dag_id, {"in_place": in_place, "deferred": deferred})
    echo_run = runs["e2e_echo_key"]
    try:
        ti = driver.dep.wait_ti_state(
            "e2e_echo_key", echo_run, "deferred", {"deferred", "failed", "success", "up_for_retry"}, 90
        )
        assert ti["state"] == "deferred", (
            f"the deferred task ended {ti['state']} before deferring\n"
            + driver.where("e2e_echo_key", echo_run)
        )
        get_echo = echo.inject("echo", status=400, method="GET", times=10**9)
        states = {dag_id: driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT) for dag_id, run_id in runs.items()}
    finally:
        echo.release(deferred)
    echoed = 10**9 - get_echo.times
    logs: dict[str, str] = {}
    for dag_id, run_id in runs.items():
        assert states[dag_id] == "failed", f"{dag_id} ended {states[dag_id]}\n{driver.where(dag_id, run_id)}"
        for ti in driver.dep.task_instances(dag_id, run_id):
            task = f"{dag_id}.{ti['task_id']}"
            assert ti["state"] == "failed" and ti["try_number"] == 1, (
                f"{task} is {ti['state']} (try {ti['try_number']}), expected failed (try 1)\n"
                + driver.where(dag_id, run_id)
            )
            logs[task] = driver.dep.task_log(dag_id, run_id, ti["task_id"], 1)
    assert len(logs) == 3, f"expected 3 tasks, found {sorted(logs)}"
    newline_log = logs["e2e_newline_key.stop_pipeline"]
    assert "feldera_newline" in newline_log and re.search(
        r"the password field has (a control character|surrounding white space)", newline_log
    ), (
        "e2e_newline_key's log does not say that feldera_newline's password field has a control "
        f"character or white space:\n{newline_log[-3000:]}"
    )
    sent = [r for r in driver.emu.feldera.requests if driver.emu.newline_key.strip() in str(r.headers)]
    assert not sent, f"the key with its newline went on the wire: {[r.path for r in sent]}"
    for task in ("in_place", "deferred"):
        log = logs[f"e2e_echo_key.{task}"]
        # The service's error, shown as far as the credentials it quotes (hidden: "***").
        assert re.search(r"HTTP 400 Echo: invalid credentials '[^']*\*\*\*", log), (
            f"e2e_echo_key.{task}'s log does not show the service's HTTP 400 quoting the credentials "
            f"(masked):\n{log[-3000:]}"
        )
    driver.deferred_for_real("e2e_echo_key", echo_run, "deferred")
    trigger_log = "\n".join(
        p.read_text(errors="replace")
        for p in driver.dep.trigger_log_files("e2e_echo_key", echo_run, "deferred")
    )
    assert "HTTP 400" in trigger_log, f"the trigger's log does not show the HTTP 400:\n{trigger_log[-3000:]}"
    key = f"Bearer {echo.settings.api_key}"
    for pipeline, method in ((in_place, None), (deferred, "GET")):
        asked = [
            r
            for r in echo.requests
            if r.path.startswith(f"/v0/pipelines/{pipeline}") and (method is None or r.method == method)
        ]
        assert any(r.headers.get("authorization") == key for r in asked), (
            f"no request for {pipeline} carried the echo key: the echo never had it to quote"
        )
    assert echoed >= 1, "the triggerer's status reads were never answered with the echo"
    forms = {
        n: v for n, v in driver.emu.secrets().items() if n.startswith(("feldera_newline", "feldera_echo"))
    }
    leaks = [f"{task}: {name}" for task, log in logs.items() for name, v in forms.items() if v in log]
    assert not leaks, "a form of the hostile keys in the task logs:\n" + "\n".join(leaks)
    summary = (
        f"hostile keys: feldera_newline refused when read (password field named, 0 requests sent); "
        f"feldera_echo: in_place and deferred failed with HTTP 400 ({echoed} echoed status read(s) in "
        f"the triggerer), 0 of {len(forms)} key forms in their logs, {time.monotonic() - started:.0f}s"
    )
    driver.figure(f"  {summary}")
    # The logs as the UI shows them, for a reader (checked above: no form of the keys in them).
    shown = [f"==== {task} (REST log, try 1)\n{log}" for task, log in logs.items()]
    (OUT / "hostile_keys.txt").write_text(summary + "\n\n" + "\n\n".join(shown) + "\n")


def test_secret_sweep(driver: Driver) -> None:
    """secrets: in no log, output, rendered field, XCom, REST log

    No secret in any file the deployment wrote, nor in the REST answers for every run the session
    started (``driver.runs``, recorded by the earlier phases)."""
    forms = driver.emu.secrets()
    assert len(forms) >= 5, f"too few secrets to look for: {sorted(forms)}"

    def hits(text: str) -> list[str]:
        return [name for name, secret in forms.items() if secret in text]

    probe = "x " + next(iter(forms.values())) + " y"
    assert hits(probe), "the scanner does not find a secret in a text that holds one"
    # What the provider printed before it refused such keys and redacted every form: an HTTP
    # library's refusal of the header quoting it with repr, and the echoed header in a JSON log line.
    newline, echoed = driver.emu.newline_key, driver.emu.feldera_echo.settings.api_key
    refused = f"Invalid header value: {f'Bearer {newline}'!r}"
    for text, wanted in (
        (refused, "feldera_newline repr"),
        (json.dumps({"event": "Task failed", "exc_value": refused}), "feldera_newline repr in JSON"),
        (
            json.dumps({"event": f"HTTP 400: headers={{'authorization': 'Bearer {echoed}'}}"}),
            "feldera_echo Bearer",
        ),
    ):
        found = hits(text)
        assert any(name.startswith(wanted) for name in found), (
            f"the scanner does not find the {wanted!r} form where the provider used to print it "
            f"(found {found})"
        )
    services = driver.emu.all()
    used = [
        s for s in ("feldera", "dataforseo", "rainforest", "amperity", "datasift") if not services[s].handled
    ]
    assert not used, (
        f"services the runs never reached (their secrets were never used): {used}; "
        "run the sweep with the phases that reach them (e.g. e2e/test_examples.py)"
    )
    leaks: list[str] = []
    scanned = 0
    for folder in (driver.home / "logs", driver.dep.out_dir, driver.dep.cli_dir):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                scanned += 1
                if found := hits(path.read_text(errors="replace")):
                    leaks.append(f"{path.relative_to(driver.home)}: {found}")
    answers = 0
    for dag_id, run_id in driver.runs:
        for ti in driver.dep.task_instances(dag_id, run_id):
            task_id, index = ti["task_id"], ti.get("map_index", -1)
            detail = driver.dep.task_instance(dag_id, run_id, task_id, index)
            blobs = {
                "task instance (rendered fields, trigger)": json.dumps(detail),
                "xcom": json.dumps(driver.dep.xcom_entries(dag_id, run_id, task_id, index), default=str),
            }
            for attempt in range(1, ti["try_number"] + 1):  # 0: never ran, no log
                blobs[f"log try {attempt}"] = driver.dep.task_log(dag_id, run_id, task_id, attempt, index)
            for what, blob in blobs.items():
                answers += 1
                if found := hits(blob):
                    leaks.append(f"REST {dag_id}/{run_id}/{task_id} {what}: {found}")
    driver.figure(f"  secret sweep: {len(forms)} secret forms, {scanned} files, {answers} REST answers")
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:20])
