"""From an HTTP answer to the provider's named errors: the error body's message and code, the status
mapped to an error class, and the small readers every parser uses.

``ErrorMapping`` is the part of ``StopServiceHook`` that maps answers; the hook's contract is in
``hooks.base``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    MalformedResponseError,
    RateLimitedError,
    ServiceUnavailableError,
    StopRejectedError,
    TargetNotFoundError,
)
from airflow_provider_stop.hooks.retrying import parse_retry_after
from airflow_provider_stop.hooks.transport import HttpTransport
from airflow_provider_stop.hooks.validation import clip


class ErrorMapping(HttpTransport):
    """Every answer that is not 2xx becomes a named error; services extend it for their own signals."""

    target_noun: ClassVar[str] = "target"
    conn_id: str

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        """(message, error_code) from an error body; services override for their shape."""
        try:
            body = response.json()
        except MalformedResponseError:
            text = response.text.strip()
            if text.startswith("<") or not text:
                return f"HTTP {response.status_code} (non-JSON body)", None
            return clip(text, 300), None
        if isinstance(body, dict):
            message = (
                body.get("message")
                or body.get("error")
                or body.get("status_message")
                or json.dumps(body)[:300]
            )
            code = body.get("error_code") or body.get("code") or body.get("status_code")
            return clip(str(message), 300), clip(str(code), 60) if code is not None else None
        return clip(str(body), 300), None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        """Map an HTTP status to a named error. 2xx returns; everything else raises."""
        status = response.status_code
        if 200 <= status < 300:
            return
        # A credential request's answer may hold the credential itself: its body is never quoted.
        message, code = (
            self.error_details(response) if request.authenticate else ("(a credential request's body)", None)
        )
        what = f"{request.method} {self.describe(request)}"
        kwargs: dict[str, Any] = {"target_id": request.target_id, "status_code": status, "error_code": code}
        text = self.redact(
            f"{self.hook_name}: {what} -> HTTP {status}" + (f" {code}" if code else "") + f": {message}"
        )
        if 300 <= status < 400:
            location = self.redact(clip(response.header("location") or "?"))
            raise StopRejectedError(
                f"{text}. The service redirected to {location}; redirects are not followed so that "
                "credentials never leave the configured host. Point the connection at the final URL.",
                **kwargs,
            )
        if status in (401, 403):
            raise AuthenticationError(
                f"{text}. Check the credentials of connection {self.conn_id!r}.", **kwargs
            )
        if status == 404:
            raise TargetNotFoundError(text, **kwargs)
        retry_after = parse_retry_after(response.header("retry-after"))
        if status == 429:
            raise RateLimitedError(text, retry_after=retry_after, **kwargs)
        if status in (408, 502, 503, 504) or (status >= 500 and status != 501):
            raise ServiceUnavailableError(text, retry_after=retry_after, **kwargs)
        raise StopRejectedError(text, **kwargs)

    def json_object(self, response: ApiResponse, what: str) -> dict[str, Any]:
        """The answer's JSON object; anything else (a list, a string) is a malformed answer."""
        body = response.json()
        if not isinstance(body, dict):
            raise MalformedResponseError(f"{self.hook_name}: the answer for {what} is not an object")
        return body

    def warn_unknown_state(self, target_id: str, field_name: str, state: Any) -> None:
        """A state spelling nobody documented: logged, and never taken for stopped."""
        self.log.warning(
            "%s: %s %r reports unknown %s %r; treating it as running",
            self.hook_name,
            self.target_noun,
            target_id,
            field_name,
            state,
        )
