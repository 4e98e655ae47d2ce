"""Input validation shared by hooks, operators, sensors and notifiers: bad ids fail before any request,
at DAG-parse time where the value is already known."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from airflow_provider_stop.hooks.errors import InvalidInputError

MAX_TARGET_ID_LENGTH = 1024
#: What ``{{ value }}`` and ``{{ value | tojson }}`` render for None: never taken for an id.
RENDERED_NONE = frozenset({"None", "null"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def validate_target_id(value: Any, param: str) -> str:
    """A target id is a non-empty string without control characters; it is never altered."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{param} must be a string, got {type(value).__name__} {value!r}"
            + (" (quote it if it is a numeric id)" if isinstance(value, int | float) else "")
        )
    if not value.strip():
        raise InvalidInputError(f"{param} must not be empty or whitespace, got {value!r}")
    if value in RENDERED_NONE:
        raise InvalidInputError(
            f"{param} is the text {value!r}: a template rendered None (a missing param or XCom?)"
        )
    if _CONTROL_CHARS.search(value):
        raise InvalidInputError(f"{param} must not contain control characters, got {value!r}")
    if len(value) > MAX_TARGET_ID_LENGTH:
        raise InvalidInputError(f"{param} is {len(value)} characters long; at most {MAX_TARGET_ID_LENGTH}")
    return value


def normalize_target_ids(value: Any, param: str) -> list[str]:
    """One id, a list of ids, or a JSON string of a list (what a template renders) -> unique ids."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            decoded = json.loads(value)
        except ValueError:  # "{{ params.ids }}" without | tojson renders Python's repr: ['a', 'b']
            import ast

            try:
                decoded = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                decoded = None
        if isinstance(decoded, list):
            value = decoded
    if value is None:
        raise InvalidInputError(f"{param} is required; it rendered to None")

    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InvalidInputError(f"{param} must name at least one target; got an empty list")
    ids = [validate_target_id(item, param) for item in items]
    return list(dict.fromkeys(ids))


def validate_positive_number(value: Any, param: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        raise InvalidInputError(f"{param} must be a positive number of seconds, got {value!r}")
    return float(value)
