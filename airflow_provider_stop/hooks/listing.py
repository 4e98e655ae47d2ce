"""A service's list, page by page: one pager per service, read whole (stop-all) or only as far as
it pays for a wait (status reads of many targets in fewer requests than one read each).

``ListReads`` is the part of ``StopServiceHook`` that reads lists; the hook's contract (which methods a
service overrides) is in ``hooks.base``.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks.batching import BatchStops
from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse, ListWalk, TargetStatus
from airflow_provider_stop.hooks.errors import MalformedResponseError, StopProviderError

if TYPE_CHECKING:
    import httpx

#: HTTP statuses of a list read that mean the server does not offer the list: read each id instead.
LIST_UNAVAILABLE = frozenset({400, 404, 405, 501})
#: A list read, page by page: yields each page's request with the parser for its answer (run inside
#: the retry), is sent the parsed answer, and records what the page shows in its ``ListWalk``.
ListPager = Generator[tuple[ApiRequest, Callable[[ApiResponse], Any]], Any, None]
#: Pages a list had when last read whole, per hook class, connection and list scope (this process):
#: what ``status_list_requests`` of a paged list expects a read to cost.
_list_pages_seen: dict[tuple[str, ...], tuple[int, float]] = process_state.shared("list sizes", dict)
#: A remembered length older than this is forgotten: a list that was long once is tried again.
LIST_SIZE_TTL = 600.0
#: The most pages and targets one list read takes (a service that pages on forever is malformed).
MAX_LIST_PAGES = 10_000
MAX_LIST_ITEMS = 1_000_000


class ListReads(BatchStops):
    """Stop-all's list and the status reads that go through it (sync and async alike)."""

    #: Most list pages one status read may take (None: the list's own length): a service whose list
    #: is more tightly limited than its reads by id bounds it; the ids not yet shown are read by id.
    max_status_list_pages: ClassVar[int | None] = None
    target_noun: ClassVar[str]
    conn_id: str

    if TYPE_CHECKING:

        def get_status(self, target_id: str) -> TargetStatus: ...

        async def aget_status(self, client: httpx.AsyncClient, target_id: str) -> TargetStatus: ...

    def list_targets(self) -> list[TargetStatus]:
        """Every target the service lists, with its status (for stop-all): the whole list."""
        return list(self.walk_list().statuses.values())

    def running_targets(self, name_pattern: str | None = None) -> list[str]:
        """Ids of listed targets that are not stopped, optionally whose id or name matches a glob such as
        ``nightly_*``."""
        return [status.target_id for status in self.running_statuses(name_pattern)]

    def running_statuses(self, name_pattern: str | None = None) -> list[TargetStatus]:
        """The listed statuses of ``running_targets`` (a stop-all's dry run shows them)."""

        def matches(status: TargetStatus) -> bool:
            names = (status.target_id, status.details.get("name"))
            return any(isinstance(n, str) and fnmatch.fnmatchcase(n, name_pattern or "*") for n in names)

        return [status for status in self.list_targets() if not status.stopped and matches(status)]

    def status_list_requests(self, count: int) -> int | None:
        """Requests one ``list_statuses`` read costs when ``count`` targets are awaited, or None when
        the service has no list that is a status read (default). Waits read the list when it costs
        fewer requests (and credits, and rate budget) than ``count`` reads by id."""
        return None

    def list_statuses(self, target_ids: Sequence[str]) -> dict[str, TargetStatus]:
        """The states the service's list shows, keyed by id (may include other targets and miss some)."""
        return self.walk_list(target_ids).statuses

    async def alist_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        return (await self.awalk_list(client, target_ids)).statuses

    def list_pages(self, walk: ListWalk) -> ListPager:
        """The service's list as a ``ListPager``. Default: the one ``build_list_request`` call. A paged
        list overrides this once, and stop-all and status reads share it (sync and async alike)."""
        statuses = yield self.build_list_request(), self.parse_list_response
        walk.add(statuses, pages_left=0)

    def list_scope(self) -> tuple[str, ...]:
        """What narrows the list besides the connection (a filter): its remembered size is per scope."""
        return ()

    def _list_key(self) -> tuple[str, ...]:
        return (type(self).__name__, self.conn_id, *self.list_scope())

    def expected_list_pages(self) -> int:
        """Pages the list had when a status read last saw its length in this process (a stop-all may
        page differently); 1 before that: the first page says how many follow, and the read stops
        there when reading the rest by id is no dearer."""
        pages, when = _list_pages_seen.get(self._list_key(), (1, 0.0))
        return pages if time.monotonic() - when < LIST_SIZE_TTL else 1

    def _enough(self, walk: ListWalk, wanted: set[str] | None) -> bool:
        """A status read stops once the list showed every wanted id, once what is left costs no less
        than reading the missing ids one by one, or at ``max_status_list_pages``."""
        if wanted is None:
            return False
        missing = sum(1 for t in wanted if t not in walk.statuses)
        cap = self.max_status_list_pages
        if not missing or (cap is not None and walk.pages_read >= cap):
            return True
        return walk.pages_left is not None and walk.pages_left >= missing

    def _walk_ended(self, walk: ListWalk, error: StopProviderError | None) -> ListWalk:
        """Remember the list's length; a paging a status read cannot follow leaves the rest to reads
        by id (a stop-all raises: it must not miss targets silently)."""
        walk.statuses = {t: self.redact.value(s) for t, s in walk.statuses.items()}
        if error is not None:
            self.redact.error(error)
            if not walk.for_status:
                raise error
            self.log.warning("%s: %s; reading the rest by id", self.hook_name, error)
        elif walk.for_status and walk.pages_left is not None:
            _list_pages_seen[self._list_key()] = (walk.pages_read + walk.pages_left, time.monotonic())
        return walk

    def _paging_error(self, walk: ListWalk, seen: set[str], request: ApiRequest) -> StopProviderError | None:
        """A list that asks for a page it has already read (a cycle of any length, e.g. two
        ``next_token`` values taking turns), or that runs past ``MAX_LIST_PAGES`` pages or
        ``MAX_LIST_ITEMS`` targets, is a malformed answer, not a reason to read forever."""
        key = json.dumps(
            [request.method, request.base_url, request.path, sorted(request.params.items()), request.json],
            sort_keys=True,
            default=str,
        )
        if key in seen:
            problem = f"asked for a page it had read already, after {walk.pages_read} page(s): a paging cycle"
        elif walk.pages_read >= MAX_LIST_PAGES:
            problem = f"has more than {MAX_LIST_PAGES} pages"
        elif len(walk.statuses) > MAX_LIST_ITEMS:
            problem = f"has more than {MAX_LIST_ITEMS} {self.target_noun}s"
        else:
            seen.add(key)
            return None
        return MalformedResponseError(f"{self.hook_name}: the {self.target_noun} list {problem}")

    def walk_list(self, target_ids: Sequence[str] | None = None) -> ListWalk:
        """Read the list whole, or for ``target_ids`` (a status read) only as far as it pays. A failed
        request is handed to the pager (which may ask differently) and otherwise raised."""
        wanted = None if target_ids is None else set(target_ids)
        walk = ListWalk(for_status=wanted is not None)
        pager = self.list_pages(walk)
        seen: set[str] = set()
        try:
            step = next(pager)
            while not self._enough(walk, wanted):
                if (paging := self._paging_error(walk, seen, step[0])) is not None:
                    return self._walk_ended(walk, paging)
                try:
                    body = self.send(*step)
                except StopProviderError as exc:
                    step = pager.throw(exc)
                    continue
                try:
                    step = pager.send(body)
                except StopProviderError as exc:
                    return self._walk_ended(walk, exc)
        except StopIteration:
            pass
        finally:
            pager.close()
        return self._walk_ended(walk, None)

    async def awalk_list(
        self, client: httpx.AsyncClient, target_ids: Sequence[str] | None = None
    ) -> ListWalk:
        await self.aconfig()  # the pager builds its first request at once: no blocking lookup then
        wanted = None if target_ids is None else set(target_ids)
        walk = ListWalk(for_status=wanted is not None)
        pager = self.list_pages(walk)
        seen: set[str] = set()
        try:
            step = next(pager)
            while not self._enough(walk, wanted):
                if (paging := self._paging_error(walk, seen, step[0])) is not None:
                    return self._walk_ended(walk, paging)
                try:
                    body = await self.asend(client, *step)
                except StopProviderError as exc:
                    step = pager.throw(exc)
                    continue
                try:
                    step = pager.send(body)
                except StopProviderError as exc:
                    return self._walk_ended(walk, exc)
        except StopIteration:
            pass
        finally:
            pager.close()
        return self._walk_ended(walk, None)

    def use_listed_status(self, status: TargetStatus) -> bool:
        """Whether a status the list shows stands for a read by id. A service whose list items show
        less than the read says no where that matters (the id is then read by id)."""
        return True

    def _lists_cheaper(self, target_ids: Sequence[str]) -> bool:
        cost = self.status_list_requests(len(target_ids)) if len(target_ids) > 1 else None
        return cost is not None and cost < len(target_ids)

    def _from_list(
        self, target_ids: Sequence[str], listed: Mapping[str, TargetStatus] | StopProviderError
    ) -> tuple[dict[str, TargetStatus | StopProviderError], list[str]]:
        """What the list shows (or the list's failure, which is every id's, as a batch stop's failure
        is), and the ids to read by id: those it does not show, so nothing is judged on missing data.
        A list the server does not offer (400/404/405/501) is logged, and every id is read by id."""
        if isinstance(listed, StopProviderError):
            if listed.status_code not in LIST_UNAVAILABLE:
                return dict.fromkeys(target_ids, listed), []
            self.log.warning("%s: the list read failed (%s); reading each by id", self.hook_name, listed)
            return {}, list(target_ids)
        shown: dict[str, TargetStatus | StopProviderError] = {
            t: listed[t] for t in target_ids if t in listed and self.use_listed_status(listed[t])
        }
        return shown, [t for t in target_ids if t not in shown]

    def read_statuses(self, target_ids: Sequence[str]) -> list[tuple[str, TargetStatus | StopProviderError]]:
        """Every id's status or error, through the list when that is cheaper."""
        if not self._lists_cheaper(target_ids):
            return self._map(self.get_status, target_ids)
        try:
            listed: Mapping[str, TargetStatus] | StopProviderError = self.list_statuses(target_ids)
        except StopProviderError as exc:
            listed = exc
        shown, missing = self._from_list(target_ids, listed)
        by_id = dict(self._map(self.get_status, missing)) if missing else {}
        return [(t, shown[t] if t in shown else by_id[t]) for t in target_ids]

    async def aread_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> list[tuple[str, TargetStatus | StopProviderError]]:
        if not self._lists_cheaper(target_ids):
            return await self._amap(lambda t: self.aget_status(client, t), target_ids)
        try:
            listed: Mapping[str, TargetStatus] | StopProviderError = await self.alist_statuses(
                client, target_ids
            )
        except StopProviderError as exc:
            listed = exc
        shown, missing = self._from_list(target_ids, listed)
        by_id = dict(await self._amap(lambda t: self.aget_status(client, t), missing)) if missing else {}
        return [(t, shown[t] if t in shown else by_id[t]) for t in target_ids]

    def build_list_request(self) -> ApiRequest:
        raise NotImplementedError(f"{type(self).__name__} cannot list {self.target_noun}s")

    def parse_list_response(self, response: ApiResponse) -> list[TargetStatus]:
        raise NotImplementedError(f"{type(self).__name__} cannot list {self.target_noun}s")
