"""The link of a stop task, and how the stop operators declare and persist it.

Airflow 3 works an operator's links out when the task ends (``finalize``) and its api-server reads them
from XCom: a link computed then shows nothing while the task runs or is deferred (and users miss them on
failed tasks, apache/airflow#57545). So a stop operator pushes the URL under the link's own XCom key
(``_link_<class name>``, the key the api-server reads) before it sends the stop; from then on the link
shows on a running, deferred, failed or finished task. ``get_link`` reads it back: Airflow 3 calls it at
the end of the task (and stores what it returns under the same key), Airflow 2.11's webserver on every
view. dbt Cloud's run operator does the same with its run's URL (``DbtCloudRunJobOperatorLink``).

A URL is built from the connection's API URL (``ClientConfig.base_url``, which never holds a credential:
a key a service takes in the query string is in ``ClientConfig.params``), then cleaned of any user info,
query and fragment: a link is shown to everyone who can see the task.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_stop import services
from airflow_provider_stop._compat import BaseOperatorLink

if TYPE_CHECKING:
    from airflow_provider_stop._compat import BaseOperator
    from airflow_provider_stop.hooks.base import StopServiceHook
    from airflow_provider_stop.hooks.data import ClientConfig

#: The XCom key of ``{target id: its page}`` when a task stops several targets that each have a page
#: (the link itself has one URL: then the console's).
TARGET_PAGES_KEY = "target_pages"


def public_url(url: str | None) -> str | None:
    """``url`` without user info, query or fragment; None unless it is an http(s) URL with a host."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def without_path_suffix(url: str, suffix: str) -> str:
    """``url`` with ``suffix`` (``/v0``, ``/api``) taken off the end of its path, and no trailing ``/``:
    the root the service's UI is served under, next to its API."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith(suffix):
        path = path[: -len(suffix)]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class StopTargetLink(BaseOperatorLink):
    """A service's link: its button name (``name``), its console page and, when the service's UI has a
    public page per target, that page. One class per service, in ``links/<service>.py``, where it
    registers itself (role ``link``); the service's stop operators show it."""

    service_info: ClassVar[services.Service]
    service_role: ClassVar[str] = "link"

    def __init_subclass__(cls, *, service: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if service is not None:
            cls.service_info = services.service(service)
            services.register_class(service, cls.service_role, cls)

    @property
    def xcom_key(self) -> str:
        """Airflow 3's key for the link (``_link_<class name>``, what its api-server reads), also on
        Airflow 2.11, whose ``BaseOperatorLink`` has no ``xcom_key``."""
        return f"_link_{type(self).__name__}"

    def console_url(self, config: ClientConfig) -> str | None:
        """The console page of the account (or deployment); None when it cannot be named."""
        return None

    def target_url(self, config: ClientConfig, target_id: str) -> str | None:
        """The page of one target in the service's UI; None when the service has no public one."""
        return None

    def pages(self, config: ClientConfig, target_ids: Sequence[str]) -> dict[str, str]:
        """Each target's own page (empty when the service has none)."""
        found = {target: public_url(self.target_url(config, target)) for target in target_ids}
        return {target: page for target, page in found.items() if page}

    def url(self, config: ClientConfig, target_ids: Sequence[str]) -> str | None:
        """The link of a task that stops ``target_ids``: the target's own page when there is one target
        and it has one; else the console page (a link has one URL per task)."""
        if len(target_ids) == 1:
            page = self.pages(config, target_ids).get(target_ids[0])
            if page:
                return page
        return public_url(self.console_url(config))

    def xcom_values(self, config: ClientConfig, target_ids: Sequence[str]) -> dict[str, Any]:
        """What a task stores for this link: the URL under ``xcom_key`` and, when several targets each
        have a page, those pages under ``TARGET_PAGES_KEY``."""
        values: dict[str, Any] = {}
        url = self.url(config, target_ids)
        if url:
            values[self.xcom_key] = url
        pages = self.pages(config, target_ids) if len(target_ids) > 1 else {}
        if pages:
            values[TARGET_PAGES_KEY] = pages
        return values

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """The URL the task pushed before its stop, or nothing (it had no target, or failed before)."""
        from airflow_provider_stop._compat import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return value if isinstance(value, str) else ""


def link_class(service: services.Service) -> type[StopTargetLink] | None:
    """The service's link class; None for a service without one (defined outside this package)."""
    if service.modules and "links" not in service.modules:
        return None
    try:
        return services.load(service.name, "link")
    except LookupError:
        return None


class TargetLinks:
    """Mixed into the stop operators, before ``ServiceBinding`` (which names the service): a service's
    operator shows the service's link (``operator_extra_links``, unless the class or a parent of it
    chose its own), and ``persist_links`` pushes its URL before the stop."""

    operator_extra_links: Collection[BaseOperatorLink]
    log: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        service = getattr(cls, "service_info", None)
        inherited = getattr(cls, "operator_extra_links", ())
        if service is None or "operator_extra_links" in cls.__dict__:
            return
        if any(not isinstance(link, StopTargetLink) for link in inherited):
            return  # a parent class chose its own links
        link = link_class(service)
        if link is not None:
            cls.operator_extra_links = (link(),)

    def persist_links(
        self, context: Mapping[str, Any], hook: StopServiceHook, target_ids: Sequence[str]
    ) -> None:
        """Push each link's URL for ``target_ids`` to XCom now, before the stop is sent and the wait
        starts, so that Airflow shows it on a running, deferred or failed task. A link is never worth
        failing a stop for: a problem is logged, and the stop goes on."""
        ti: Any = context.get("ti") if context else None
        links = [link for link in self.operator_extra_links if isinstance(link, StopTargetLink)]
        if not hasattr(ti, "xcom_push") or not links or not target_ids:
            return  # no task instance to push to: run outside Airflow (a test, a script)
        for link in links:
            try:
                for key, value in link.xcom_values(hook.config, target_ids).items():
                    ti.xcom_push(key=key, value=value)
            except Exception as exc:  # the stop matters, the link does not
                self.log.warning("No %r link for this task: %s: %s", link.name, type(exc).__name__, exc)

    def _push_links(self, context: Mapping[str, Any], values: Mapping[str, Any] | None) -> None:
        """Push link XComs a trigger built (a task started in the triggerer, finishing on a worker)."""
        ti: Any = context.get("ti") if context else None
        if not values or not hasattr(ti, "xcom_push"):
            return
        for key, value in values.items():
            try:
                ti.xcom_push(key=key, value=value)
            except Exception as exc:  # the stop matters, the link does not
                self.log.warning("Could not store the link %r: %s: %s", key, type(exc).__name__, exc)
