"""Keeping secrets out of every text the provider writes: the forms a secret can take on the wire and
in an error, the redactor every error and status passes through, and the HTTP libraries' own logs.

Nothing here imports an HTTP library or Airflow at module level.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any, TypeVar

REDACTED = "***"
#: Shorter secrets are not redacted: "***" in place of every "abc" would make logs unreadable.
MIN_SECRET_LENGTH = 4
#: Header names whose values are credentials, whatever a hook declares.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})

_T = TypeVar("_T")


def secret_forms(secret: str) -> set[str]:
    """Every form ``secret`` can take in a URL, a header, a log or an error: raw, percent-encoded,
    escaped as ``repr`` and JSON show it (an HTTP library that refuses ``'KEY\\n'`` quotes it with
    ``repr``), base64 (HTTP Basic), and the same of its stripped core and of a ``Scheme token``
    header's token."""
    forms: set[str] = set()
    cores = {secret, secret.strip()}
    scheme, _, token = secret.strip().partition(" ")
    if token and scheme.isalpha():
        cores.add(token.strip())
    for core in cores:
        if len(core) < MIN_SECRET_LENGTH:
            continue
        raw = core.encode("utf-8", "surrogatepass")
        forms |= {
            core,
            urllib.parse.quote(core, safe=""),
            urllib.parse.quote_plus(core),
            repr(core)[1:-1],
            json.dumps(core)[1:-1],
            json.dumps(core, ensure_ascii=False)[1:-1],
            core.encode("unicode_escape").decode("ascii"),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
        }
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces every form of every known secret in any text that may be logged, raised, stored in
    XCom or sent in a trigger event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if isinstance(secret, str) and secret:
                forms |= secret_forms(secret)
        self._forms = sorted(forms, key=len, reverse=True)

    @property
    def forms(self) -> tuple[str, ...]:
        return tuple(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def add(self, secret: str) -> None:
        """A secret obtained at run time (e.g. an OAuth access token) is hidden from then on."""
        extra = secret_forms(secret) - set(self._forms)
        if extra:
            self._forms = sorted({*self._forms, *extra}, key=len, reverse=True)
            _register(extra)

    def register_with_airflow(self) -> None:
        """Hide the secrets from the HTTP libraries' logs, and ask Airflow's masker to hide them too."""
        _register(self._forms)

    def error(self, exc: _T) -> _T:
        """The one point every error of a request passes: its message (and the messages of a batch's
        failures) redacted in place, so whatever shows it later (a log, a trigger event, XCom, the
        connection test) has nothing to hide."""
        from airflow_provider_stop.hooks.errors import BatchStopError, StopProviderError

        if isinstance(exc, StopProviderError):
            clean = self(exc.message)
            if clean != exc.message:
                exc.message = clean
                exc.args = (clean,)
            if isinstance(exc, BatchStopError):
                for failure in exc.failures.values():
                    self.error(failure)
        return exc

    def value(self, obj: _T) -> _T:
        """``obj`` (a status, an ack, plain data) with every string in it redacted: text a service
        sent back ends up in XCom, which Airflow does not mask."""
        if not self._forms:
            return obj
        return self._walk(obj)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {self._walk(k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self._walk(v) for v in obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes = {f.name: self._walk(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return dataclasses.replace(obj, **changes)
        return obj


def credential_values(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The values of credential headers (``Authorization``, API-key headers) among ``headers``."""
    return [value for name, value in headers if name.lower() in CREDENTIAL_HEADERS and value]


class _HttpLibraryRedaction(logging.Filter):
    """Redacts known secrets from the HTTP libraries' own log records (urllib3 logs request lines with
    their query string at DEBUG; httpx logs full URLs at INFO), which Airflow's masker never sees."""

    LOGGERS = ("urllib3.connectionpool", "httpx", "httpcore.connection", "httpcore.http11")

    def __init__(self) -> None:
        super().__init__()
        self.forms: set[str] = set()
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.forms:
            text = record.getMessage()
            for form in sorted(self.forms, key=len, reverse=True):
                text = text.replace(form, REDACTED)
            record.msg, record.args = text, ()
        return True


_http_log_redaction: _HttpLibraryRedaction | None = None


def http_log_redaction() -> _HttpLibraryRedaction:
    """Installed on first use by a hook, not when a DAG file imports this module."""
    global _http_log_redaction
    if _http_log_redaction is None:
        _http_log_redaction = _HttpLibraryRedaction()
    return _http_log_redaction


def _register(forms: Iterable[str]) -> None:
    forms = list(forms)
    http_log_redaction().forms.update(forms)
    _mask_with_airflow(forms)


def _mask_with_airflow(forms: Iterable[str]) -> None:
    from airflow_provider_stop._compat import mask_secret

    for form in forms:
        mask_secret(form)


def url_without_userinfo(url: str) -> str:
    """``url`` as it may appear in a message: a ``user:password@`` part is dropped."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
