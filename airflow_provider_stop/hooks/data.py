"""The data hooks exchange: one status type, a stop's answer, and requests and responses as plain data
independent of the HTTP library, so the sync and async paths share every rule."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_stop.hooks.errors import MalformedResponseError


@dataclass(frozen=True)
class TargetStatus:
    """Where one remote target stands. ``stopped`` is the service-independent verdict."""

    target_id: str
    raw_state: str | None
    stopped: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: what operators return and triggers send."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetStatus:
        return cls(
            target_id=str(data["target_id"]),
            raw_state=data.get("raw_state"),
            stopped=bool(data.get("stopped")),
            error=data.get("error"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class StopAck:
    """The service's answer to a stop request."""

    target_id: str
    accepted: bool = True
    already_stopped: bool = False
    message: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_status(self) -> TargetStatus:
        """Status to report when the caller does not wait: the state is not known yet."""
        return TargetStatus(
            target_id=self.target_id,
            raw_state=None,
            stopped=self.already_stopped,
            details={"stop_response": self.message, "stop_options": self.options},
        )


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call, independent of the client library. ``path`` is already URL-encoded."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    target_id: str | None = None
    #: Another base URL than the connection's (e.g. an OAuth token endpoint on its own host).
    base_url: str | None = None
    #: False for a call that obtains credentials: it carries none of ``request_auth``.
    authenticate: bool = True


@dataclass(frozen=True)
class ApiResponse:
    """What came back, independent of the client library."""

    status_code: int
    headers: Mapping[str, str]
    text: str
    url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """Parsed body; an HTML page, an empty or a truncated body is a named error."""
        if not self.text.strip():
            raise MalformedResponseError(f"empty response body (HTTP {self.status_code})")
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
            snippet = self.text.strip()[:80].replace("\n", " ")
            raise MalformedResponseError(
                f"response is not JSON (HTTP {self.status_code}): {snippet!r}"
            ) from None


@dataclass(frozen=True)
class ClientConfig:
    """Everything a transport needs, derived from the Airflow connection once."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True
    secrets: tuple[str, ...] = ()
    #: Service settings read from the connection's extras (e.g. Rainforest's ``resource``).
    settings: Mapping[str, Any] = field(default_factory=dict)


def quote_segment(value: str) -> str:
    """Encode one path segment: ``/``, ``?``, ``#``, ``%`` and ``..`` can never change the path."""
    encoded = urllib.parse.quote(value, safe="")
    # "." and ".." are kept by quote(); as whole segments they would be collapsed by URL normalisation.
    if encoded in {".", ".."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


@dataclass
class ListWalk:
    """What one read of a service's (paged) list has shown so far: the driver (``walk_list``) stops
    the read as soon as what is left costs no less than reading the missing targets by id."""

    statuses: dict[str, TargetStatus] = field(default_factory=dict)
    #: Pages read so far.
    pages_read: int = 0
    #: Pages after those read, when the answers say (``None``: unknown; 0: the list is read whole).
    pages_left: int | None = None
    #: The read serves a wait (status reads), not a stop-all: a hook may page differently.
    for_status: bool = False

    def add(self, statuses: list[TargetStatus], pages_left: int | None) -> None:
        """Record one page's targets and what the page says is left."""
        self.pages_read += 1
        self.statuses.update((s.target_id, s) for s in statuses)
        self.pages_left = pages_left
