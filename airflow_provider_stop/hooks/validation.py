"""Input validation shared by hooks, operators, sensors and notifiers: bad ids fail before any request,
at DAG-parse time where the value is already known. Also the few rules every hook applies to what a
service answers: an answer is untrusted input, so an odd value is a ``MalformedResponseError`` naming
its field, never a Python error, and the service's text is shown short and escaped."""

from __future__ import annotations

import json
import math
import re
import reprlib
from typing import Any

from airflow_provider_stop.hooks.errors import InvalidInputError, MalformedResponseError

MAX_TARGET_ID_LENGTH = 1024
#: What ``{{ value }}`` and ``{{ value | tojson }}`` render for None: never taken for an id.
RENDERED_NONE = frozenset({"None", "null"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
#: The longest rendered list of ids decoded, the deepest bracket nesting in it (ids are a flat list;
#: deeper text would only make the decoders recurse), and the most ids one parameter names.
MAX_IDS_TEXT_LENGTH = 1024 * 1024
MAX_IDS_NESTING = 2
MAX_TARGET_IDS = 100_000
#: Characters of a value or of a service's text that a message or a log line shows.
SHOWN_LIMIT = 200
_SYNTAX = re.compile(r"""[\[\](){}"'\\]""")
_DIGITS = re.compile(r"[0-9]{1,18}")
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = SHOWN_LIMIT
_repr.maxlevel = 3


def shown(value: Any) -> str:
    """``value`` as a message quotes it: ``repr`` (control characters escaped, so they cannot forge
    log lines), short, and never a recursion however deep the value nests."""
    try:
        return _repr.repr(value)
    except ValueError:  # an int too long for repr
        return f"<a {type(value).__name__} too long to show>"


def clip(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """A service's text inside a message or a log line: at most ``limit`` characters, control and
    line-break characters escaped; anything but a string is ``shown``."""
    if not isinstance(value, str):
        return shown(value)
    cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value[:limit])
    return cut + ("…" if len(value) > limit else "")


def ascii_int(value: Any, field: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    """A whole number a service sent (an int, or ASCII digits: ``"²".isdigit()`` is true but ``int``
    refuses it, and ``"١٢"`` must not become 12), within the bounds; else a malformed answer."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise MalformedResponseError(
            f"{field} must be a whole number from {minimum} to {maximum}, got {shown(value)}"
        )
    return value


def optional_text(value: Any, field: str) -> str | None:
    """An optional text field of a service's answer: None, or a string; anything else is malformed."""
    if value is not None and not isinstance(value, str):
        raise MalformedResponseError(f"{field} must be a string, got {shown(value)}")
    return value


def answer_id(value: Any, field: str) -> str:
    """The id of a target a service listed: an id this provider could stop (``validate_target_id``'s
    length and characters), not ``str()`` of whatever came."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_TARGET_ID_LENGTH
        or _CONTROL_CHARS.search(value)
    ):
        raise MalformedResponseError(
            f"{field} must be a string of 1 to {MAX_TARGET_ID_LENGTH} characters without control "
            f"characters, got {shown(value)}"
        )
    return value


def validate_target_id(value: Any, param: str) -> str:
    """A target id is a non-empty string without control characters; it is never altered."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{param} must be a string, got {type(value).__name__} {shown(value)}"
            + (" (quote it if it is a numeric id)" if isinstance(value, int | float) else "")
        )
    if not value.strip():
        raise InvalidInputError(f"{param} must not be empty or whitespace, got {shown(value)}")
    if value in RENDERED_NONE:
        raise InvalidInputError(
            f"{param} is the text {value!r}: a template rendered None (a missing param or XCom?)"
        )
    if _CONTROL_CHARS.search(value):
        raise InvalidInputError(f"{param} must not contain control characters, got {shown(value)}")
    if len(value) > MAX_TARGET_ID_LENGTH:
        raise InvalidInputError(f"{param} is {len(value)} characters long; at most {MAX_TARGET_ID_LENGTH}")
    return value


def _nests_deeper(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` outside quoted strings: one linear scan, before any
    decoder (which would recurse, or take quadratic time, on such text)."""
    if sum(map(text.count, "[({")) <= limit:
        return False
    depth, quote, escaped_at = 0, "", -1
    for match in _SYNTAX.finditer(text):
        char, at = match.group(), match.start()
        if at == escaped_at:
            continue
        if quote:
            escaped_at = at + 1 if char == "\\" else escaped_at
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[({":
            depth += 1
            if depth > limit:
                return True
        elif char in "])}":
            depth -= 1
    return False


def _decode_ids(text: str, param: str) -> Any:
    """A rendered list of ids (JSON, or Python's repr), bounded before any decoder runs; None when
    it is neither."""
    if len(text) > MAX_IDS_TEXT_LENGTH:
        raise InvalidInputError(
            f"{param} is {len(text)} characters long; a list of ids may be at most {MAX_IDS_TEXT_LENGTH}"
        )
    if _nests_deeper(text, MAX_IDS_NESTING):
        raise InvalidInputError(
            f"{param} must be a flat list of ids; its brackets nest deeper than {MAX_IDS_NESTING}: "
            f"{shown(text)}"
        )
    try:
        return json.loads(text)
    except ValueError:  # "{{ params.ids }}" without | tojson renders Python's repr: ['a', 'b']
        import ast

        try:
            return ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None


def normalize_target_ids(value: Any, param: str) -> list[str]:
    """One id, a list of ids, or a JSON string of a list (what a template renders) -> unique ids."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        decoded = _decode_ids(value, param)
        if isinstance(decoded, list):
            value = decoded
    if value is None:
        raise InvalidInputError(f"{param} is required; it rendered to None")

    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InvalidInputError(f"{param} must name at least one target; got an empty list")
    if len(items) > MAX_TARGET_IDS:
        raise InvalidInputError(f"{param} names {len(items)} targets; at most {MAX_TARGET_IDS} a task")
    ids = [validate_target_id(item, param) for item in items]
    return list(dict.fromkeys(ids))


def validate_positive_number(value: Any, param: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        raise InvalidInputError(f"{param} must be a positive number of seconds, got {value!r}")
    return float(value)
