"""The events a wait ends with, on both sides: the trigger turns its outcome into event data, and the
task turns an event back into statuses or into the exception it stands for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_stop.hooks.data import StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    StopProviderError,
    StopTimeoutError,
    error_class_path,
)


def error_payload(exc: BaseException, redact: Any = str) -> dict[str, Any]:
    """An error as event data the worker turns back into the same exception class."""
    retryable = bool(getattr(exc, "retryable", False))
    return {
        "status": "error",
        "error_class": error_class_path(exc),
        "message": redact(str(exc))
        if isinstance(exc, StopProviderError)
        else redact(f"{type(exc).__name__}: {exc}"),
        "retryable": retryable,
    }


def accept_partial(exc: BatchStopError, go_on: bool, log: Any) -> tuple[dict[str, StopAck], dict[str, Any]]:
    """A batch whose stops were accepted only in part: with ``go_on`` (``fail_on_partial_failure=False``)
    and some accepted, those go on and the rest become failed results; otherwise ``exc`` is raised."""
    if not go_on or not exc.succeeded:
        raise exc
    log.error("%s\nWaiting for the %d that were accepted.", exc, len(exc.succeeded))
    return dict(exc.succeeded), failed_statuses(exc)


def failed_statuses(exc: BatchStopError) -> dict[str, Any]:
    """The targets whose stop failed, as results carrying the error (``fail_on_partial_failure=False``)."""
    return {
        t: TargetStatus(t, None, False, f"{type(e).__name__}: {e}").to_dict() for t, e in exc.failures.items()
    }


def statuses_from_event(event: Mapping[str, Any]) -> dict[str, TargetStatus]:
    return {t: TargetStatus.from_dict(s) for t, s in (event.get("statuses") or {}).items()}


def raise_from_event(event: Mapping[str, Any]) -> None:
    """Turn a trigger's error event back into the exception class it was raised as."""
    from airflow_provider_stop._compat import import_string

    message = str(event.get("message") or "the wait failed without a message")
    if event.get("status") == "timeout":
        raise StopTimeoutError(
            message, pending=event.get("pending") or [], statuses=statuses_from_event(event)
        )
    cls: Any = StopProviderError
    path = str(event.get("error_class") or "")
    if path.startswith("airflow_provider_stop."):
        try:
            cls = import_string(path)
        except ImportError:
            cls = StopProviderError
    if not (isinstance(cls, type) and issubclass(cls, StopProviderError)):
        cls = StopProviderError
    if issubclass(cls, BatchStopError):  # which targets failed is in the message; the map stays behind
        raise cls(message, failures={})
    raise cls(message)
