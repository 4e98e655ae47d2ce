"""One status board per connection per triggerer event loop: the waits on one connection share reads.

A triggerer runs every deferred wait of a deployment in one event loop. Without a board, a thousand
waits on one Feldera server send a thousand status reads each poll; with it, the waits that are due
together join one *round*, and one read (the service's list where that is cheaper, else one read per
id: ``StopServiceHook.aread_statuses``) answers all of them. Each wait still keeps its own deadline,
poll interval and error handling: a round hands every wait the outcome of its own ids, so a failed
read reaches each wait exactly as it would have reached it alone.

Boards are keyed by the hook class, the connection id and a digest of the hook's parameters: never
by host, so two connections to one host (say, two tenants or two keys) never share reads, and never
by anything secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.bounds import wait_deadline
from airflow_provider_stop.hooks.errors import collect

if TYPE_CHECKING:
    import httpx

    from airflow_provider_stop.hooks.base import StopServiceHook
    from airflow_provider_stop.hooks.data import TargetStatus
    from airflow_provider_stop.hooks.errors import StopProviderError

log = logging.getLogger(__name__)

#: The longest a round waits for the waits it expects (members still sleeping) before it reads.
GATHER_SECONDS = 0.25
#: Rounds of one board are at least ``min(poll_interval / 2, MAX_GAP_SECONDS)`` apart (a wait whose
#: deadline has come is read at once): a new wait's first read is at most a second late. A board
#: whose reads are list reads keeps ``poll_interval / 2`` (at most two reads per poll interval), and
#: its rounds wake the waits still sleeping, so they all read together and stay in one phase (a list
#: read costs the same whoever it serves).
MAX_GAP_SECONDS = 1.0


class _Round:
    """One read, and the waits it answers."""

    def __init__(self, hook: StopServiceHook, client: httpx.AsyncClient) -> None:
        self.hook = hook
        self.client = client
        self.ids: dict[str, None] = {}
        self.waiting = 0
        #: Every member is here (or a deadline came): stop gathering.
        self.ready = asyncio.Event()
        #: A wait's deadline came: read now, whatever the gap since the last read.
        self.urgent = asyncio.Event()
        self.result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        #: The latest deadline of the waits it answers (None: one has none): its requests end by it.
        self.deadline: float | None = 0.0


class StatusBoard:
    """The waits of one connection in one event loop; see the module docstring."""

    def __init__(self, label: str) -> None:
        #: The connection id and hook class: what logs may say (no secret, no host).
        self.label = label
        self.members: dict[int, float] = {}
        self.gathering: _Round | None = None
        self.last_read = float("-inf")
        self.reads = 0
        #: The board's reads are list reads (the service has one): see ``MAX_GAP_SECONDS``.
        self.lists = False
        #: Members sleeping until their next poll, and the future that ends a sleep sooner.
        self.sleepers: dict[int, asyncio.Future[None]] = {}

    def _gap(self) -> float:
        interval = min(self.members.values(), default=MAX_GAP_SECONDS * 2)
        return interval / 2 if self.lists else min(interval / 2, MAX_GAP_SECONDS)

    async def pause(self, token: int, seconds: float) -> None:
        """A member's sleep until its next poll; a round of a list-reading board ends it sooner. As
        light as ``asyncio.sleep`` (a future and a timer, no task): a triggerer holds thousands."""
        loop = asyncio.get_running_loop()
        wake = self.sleepers[token] = loop.create_future()
        timer = loop.call_later(max(0.0, seconds), _settle, wake)
        try:
            await wake
        finally:
            timer.cancel()
            if self.sleepers.get(token) is wake:
                del self.sleepers[token]

    def _waiting(self) -> int:
        return self.gathering.waiting if self.gathering else 0

    async def read(
        self,
        hook: StopServiceHook,
        client: httpx.AsyncClient,
        target_ids: Sequence[str],
        *,
        deadline: float | None = None,
    ) -> list[tuple[str, TargetStatus | StopProviderError]]:
        """Each id's status or error, from the next round. A wait whose ``deadline`` (epoch seconds)
        has come is read at once; the round's requests end by the latest deadline of its waits."""
        urgent = deadline is not None and time.time() >= deadline
        rnd = self.gathering
        if rnd is None:
            rnd = self.gathering = _Round(hook, client)
            task = asyncio.get_running_loop().create_task(self._run(rnd))
            task.add_done_callback(_quiet)
            self.lists = hook.status_list_requests(2) is not None
            if self.lists:  # one list read serves them all: wake the sleeping waits to join it
                for wake in self.sleepers.values():
                    _settle(wake)
        rnd.ids.update(dict.fromkeys(target_ids))
        rnd.waiting += 1
        rnd.deadline = None if deadline is None or rnd.deadline is None else max(rnd.deadline, deadline)
        if urgent:
            rnd.urgent.set()
        if urgent or rnd.waiting >= len(self.members):
            rnd.ready.set()
        outcome = await asyncio.shield(rnd.result)
        return [(t, outcome[t]) for t in target_ids]

    async def _run(self, rnd: _Round) -> None:
        """Gather the waits due together, keep the gap since the last read, then read once for all."""
        try:
            await _until(rnd.ready, time.monotonic() + GATHER_SECONDS)
            await _until(rnd.urgent, self.last_read + self._gap())
            self.gathering = None
            self.last_read = time.monotonic()
            self.reads += 1
            ids = list(rnd.ids)
            log.debug("status board %s: one read for %d id(s), %d wait(s)", self.label, len(ids), rnd.waiting)
            with wait_deadline(rnd.deadline):
                rnd.result.set_result(dict(await rnd.hook.aread_statuses(rnd.client, ids)))
        except BaseException as exc:
            if self.gathering is rnd:
                self.gathering = None
            if not rnd.result.done():
                rnd.result.set_exception(exc)
                rnd.result.exception()  # handed to the waits; unlogged if they all left meanwhile
            if not isinstance(exc, Exception):
                raise


async def _until(event: asyncio.Event, deadline: float) -> None:
    """Wait for ``event`` until ``deadline`` (monotonic seconds), whichever comes first."""
    remaining = deadline - time.monotonic()
    if event.is_set() or remaining <= 0:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), remaining)


def _settle(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)


def _quiet(task: asyncio.Task[None]) -> None:
    """A round's failure is handed to its waits; nobody else needs to hear of it."""
    if not task.cancelled():
        task.exception()


_boards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, str], StatusBoard]] = (
    weakref.WeakKeyDictionary()
)


def board_key(hook_class_path: str, conn_id: str, hook_params: Mapping[str, Any]) -> tuple[str, str, str]:
    """The connection's identity: class, id, and a digest of the hook's parameters (never a host or a
    credential, which a connection resolves to only at run time)."""
    params = json.dumps(hook_params, sort_keys=True, default=repr)
    return hook_class_path, conn_id, hashlib.sha256(params.encode()).hexdigest()[:16]


class Seat:
    """One wait's place at a board: its reads go through the board's rounds, its sleeps end early
    when a list-reading round starts (the wait loop's ``read`` and ``pause``)."""

    def __init__(self, board: StatusBoard, token: int, deadline: float) -> None:
        self.board = board
        self.token = token
        self.deadline = deadline

    async def read(
        self, hook: StopServiceHook, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        """Each id's status from the next round; one error naming every id that failed."""
        return collect(
            "status check", await self.board.read(hook, client, target_ids, deadline=self.deadline)
        )

    async def pause(self, seconds: float) -> None:
        await self.board.pause(self.token, seconds)


_seats = itertools.count()


@contextlib.asynccontextmanager
async def joined_board(
    key: tuple[str, str, str], poll_interval: float, deadline: float
) -> AsyncIterator[Seat]:
    """A seat at the loop's board for ``key`` while the block runs."""
    boards = _boards.setdefault(asyncio.get_running_loop(), {})
    board = boards.get(key)
    if board is None:
        board = boards[key] = StatusBoard(f"{key[1]!r} ({key[0].rsplit('.', 1)[-1]})")
    token = next(_seats)
    board.members[token] = poll_interval
    try:
        yield Seat(board, token, deadline)
    finally:
        board.members.pop(token, None)
        rnd = board.gathering
        if rnd is not None and rnd.waiting >= len(board.members):
            rnd.ready.set()
        if not board.members and board.gathering is None and boards.get(key) is board:
            del boards[key]
