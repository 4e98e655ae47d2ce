"""The contract a service hook fills in (``StopServiceHook``, ``class XHook(StopServiceHook, service="x")``).

**Must** implement (the base raises ``NotImplementedError``):

- ``build_config(conn)``: base URL, auth headers or params, the secrets to redact, settings.
- ``build_status_request(id)`` and ``parse_status_response(id, response)`` -> ``TargetStatus``
  (an undocumented state is logged with ``warn_unknown_state`` and never taken for stopped).
- ``build_test_request()``: a cheap authenticated call for Airflow's "Test" button.
- Either ``build_stop_request(id, options)`` (one id a call), or ``stop_batch_size`` with
  ``build_batch_stop_request(ids, options)`` and ``parse_batch_stop_response(...)`` (many ids).

**May** override (plain data, or hooks the base calls at a defined point):

- ``target_noun``, ``max_concurrency``, ``requests_per_second``, ``stop_batch_size``.
- ``parse_stop_response``; ``build_list_request`` / ``parse_list_response`` or ``list_targets``
  (services that can list, for stop-all); ``stop_all_targets`` to use a service-wide stop call,
  only when not ``filtered``.
- ``list_pages(walk)``: a paged list as one generator (yields each page's request and parser, is
  sent the answer), shared by stop-all and status reads, sync and async (``walk_list``).
- ``status_list_requests(count)`` (and, for a list that is not ``list_pages``, ``list_statuses`` /
  ``alist_statuses``): a service whose list shows many targets' states in fewer requests than one
  read each says what a list read costs (``expected_list_pages``), and waits read the list
  instead; a target the list does not show, or whose listed status ``use_listed_status`` rejects,
  is still read by id. ``max_status_list_pages`` bounds a status read of a rate-limited list.
- ``error_details`` (the error body's shape) and ``raise_for_response``: extend it for the
  service's own error signals and end with ``super().raise_for_response(...)``.
- ``refused_as_not_running`` with ``settle_refusal`` (a refused stop a status read settles:
  already stopped, a stop under way, or options to send it again), ``fallback_options`` (a
  refused stop sent again with other options), ``validate_target`` (call ``super()``).
- ``alternative_request`` / ``both_refused`` / ``request_answered``: a request the service may
  take in another form (DataSift's two stop forms), tried once when the first is refused.
- ``request_auth`` / ``arequest_auth`` and ``invalidate_auth`` (credentials got at run time),
  ``credential_urls``, ``observe_response`` and ``budget_wait`` (budgets the service reports),
  ``rate_limit`` (the documented rate a request counts against and whose account it is: shared across
  processes by ``[stop_provider] rate_limit_storage``),
  ``prior_errors`` / ``aprior_errors``, ``after_stops`` and ``after_wait`` (e.g. to log a budget).

That is the whole list (``EXTENSION_POINTS``); ``tests/test_hook_contract.py`` fails when a
service hook overrides anything else of the base.

A method that has an async twin (``SYNC_ASYNC_PAIRS``: ``stop``/``astop``,
``stop_many``/``astop_many``, ``get_status``/``aget_status``, ``wait_until_stopped``/
``await_until_stopped``, ``send``/``asend``, ...) is overridden together with its twin or not at
all: otherwise the deferred path silently behaves differently (``tests/test_hook_contract.py``).

**Must not** override: ``config`` / ``aconfig``, ``get_conn``, ``async_client``, the
transports (``_exchange``, ``_aexchange``, ``_send_once``, ``_asend_once``), ``describe``,
``get_statuses`` / ``aget_statuses``, ``read_statuses`` / ``aread_statuses`` (the triggerer's
status board reads through them), ``walk_list`` / ``awalk_list`` and the batch helpers (``_map``,
``_amap``): they carry the rules every service shares (timeouts, no redirects,
retries, redaction, pacing, bounded concurrency, one error naming every failed target). Never put a
secret in a message; pass every text through ``self.redact``.
"""

from __future__ import annotations

#: Sync/async twins: a service hook overrides both or neither (``StopServiceHook``'s contract).
SYNC_ASYNC_PAIRS: tuple[tuple[str, str], ...] = (
    ("stop", "astop"),
    ("stop_many", "astop_many"),
    ("get_status", "aget_status"),
    ("get_statuses", "aget_statuses"),
    ("read_statuses", "aread_statuses"),
    ("list_statuses", "alist_statuses"),
    ("walk_list", "awalk_list"),
    ("wait_until_stopped", "await_until_stopped"),
    ("send", "asend"),
    ("request_auth", "arequest_auth"),
    ("prior_errors", "aprior_errors"),
    ("_stop_chunk", "_astop_chunk"),
    ("_stop_in_chunks", "_astop_in_chunks"),
    ("_send_once", "_asend_once"),
    ("_exchange", "_aexchange"),
    ("_map", "_amap"),
)


#: What a service hook may define that the base defines too: the documented extension points.
EXTENSION_POINTS = frozenset(
    {
        # must
        "build_config",
        "build_status_request",
        "parse_status_response",
        "build_test_request",
        "build_stop_request",
        "build_batch_stop_request",
        "parse_batch_stop_response",
        # data
        "target_noun",
        "max_concurrency",
        "requests_per_second",
        "stop_batch_size",
        "max_status_list_pages",
        "credential_extras",
        # may
        "parse_stop_response",
        "build_list_request",
        "parse_list_response",
        "list_targets",
        "list_statuses",
        "alist_statuses",
        "list_pages",
        "list_scope",
        "status_list_requests",
        "use_listed_status",
        "stop_all_targets",
        "error_details",
        "raise_for_response",
        "refused_as_not_running",
        "settle_refusal",
        "fallback_options",
        "validate_target",
        "alternative_request",
        "both_refused",
        "request_answered",
        "request_auth",
        "arequest_auth",
        "invalidate_auth",
        "credential_urls",
        "observe_response",
        "budget_wait",
        "rate_limit",
        "prior_errors",
        "aprior_errors",
        "after_stops",
        "after_wait",
    }
)
