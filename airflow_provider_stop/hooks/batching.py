"""Many targets in one task: every target is tried (bounded concurrency, threads on the worker, tasks
on the event loop), then one error names all that failed; services whose stop call takes many ids
get chunks of ``stop_batch_size``.

``BatchStops`` is the part of ``StopServiceHook`` that batches; the hook's contract is in ``hooks.base``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse, StopAck, TargetStatus
from airflow_provider_stop.hooks.error_mapping import ErrorMapping
from airflow_provider_stop.hooks.errors import MalformedResponseError, StopProviderError

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


class BatchStops(ErrorMapping):
    """Batches of targets: ``_map``/``_amap`` try every one, the chunk methods send batch stop calls."""

    #: Most requests in flight at once for one hook (bounded concurrency for batches).
    max_concurrency: ClassVar[int] = 8
    #: Services whose stop call takes many ids set this; ``stop_many`` then sends chunks this size.
    stop_batch_size: ClassVar[int | None] = None

    if TYPE_CHECKING:

        def validate_target(self, target_id: Any) -> str: ...
        def get_status(self, target_id: str) -> TargetStatus: ...
        async def aget_status(self, client: httpx.AsyncClient, target_id: str) -> TargetStatus: ...
        def refused_as_not_running(self, error: StopProviderError) -> bool: ...
        def settle_refusal(
            self, error: StopProviderError, status: TargetStatus, options: Mapping[str, Any]
        ) -> StopAck | dict[str, Any]: ...

    @staticmethod
    def _one_of(target_id: str, results: Mapping[str, StopAck | StopProviderError]) -> StopAck:
        result = results[target_id]
        if isinstance(result, StopProviderError):
            raise result
        return result

    def _chunk_results(
        self, chunk: Sequence[str], response: ApiResponse, options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        try:
            results = self.parse_batch_stop_response(chunk, response, options)
            results = {
                t: self.redact.error(r) if isinstance(r, StopProviderError) else self.redact.value(r)
                for t, r in results.items()
            }
        except MalformedResponseError as exc:  # sent and answered 2xx: the wait tells whether it took
            message = self.redact(f"stop sent; its answer was unreadable ({exc})")
            results = {tid: StopAck(tid, message=message, options=dict(options)) for tid in chunk}
        for tid in chunk:
            result = results.get(tid)
            if result is None:
                results[tid] = MalformedResponseError(
                    f"{self.hook_name}: the stop answer does not mention {self.target_noun} {tid!r}",
                    target_id=tid,
                )
            elif isinstance(result, StopAck):
                self._accepted(result)
        return results

    def _stop_chunk(
        self, chunk: Sequence[str], options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        """One batch stop call. A failure of the call itself is the failure of every id in it; an id
        refused as maybe not running is settled by a status read (``settle_refusal``)."""
        try:
            response = self.send(self.build_batch_stop_request(chunk, options))
        except StopProviderError as exc:
            return dict.fromkeys(chunk, exc)
        results = self._chunk_results(chunk, response, options)
        if doubtful := self._doubtful(results):
            for tid, status in self._map(self.get_status, doubtful):
                results[tid] = self._settled(results[tid], status, options)
        return results

    async def _astop_chunk(
        self, client: httpx.AsyncClient, chunk: Sequence[str], options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        try:
            response = await self.asend(client, self.build_batch_stop_request(chunk, options))
        except StopProviderError as exc:
            return dict.fromkeys(chunk, exc)
        results = self._chunk_results(chunk, response, options)
        if doubtful := self._doubtful(results):
            for tid, status in await self._amap(lambda t: self.aget_status(client, t), doubtful):
                results[tid] = self._settled(results[tid], status, options)
        return results

    def _doubtful(self, results: Mapping[str, StopAck | StopProviderError]) -> list[str]:
        return [
            t
            for t, r in results.items()
            if isinstance(r, StopProviderError) and r.target_id == t and self.refused_as_not_running(r)
        ]

    def _settled(
        self,
        refusal: StopAck | StopProviderError,
        status: TargetStatus | StopProviderError,
        options: Mapping[str, Any],
    ) -> StopAck | StopProviderError:
        """The refusal settled by the target's status; an unreadable status keeps the refusal, and so
        does a settlement asking to send the stop again (a batch sends each id once)."""
        if not isinstance(refusal, StopProviderError) or isinstance(status, StopProviderError):
            return refusal
        try:
            settled = self.settle_refusal(refusal, status, options)
        except StopProviderError as exc:
            return exc
        return settled if isinstance(settled, StopAck) else refusal

    def _chunks(self, target_ids: Sequence[str]) -> list[list[str]]:
        size = self.stop_batch_size or 1
        ids = [self.validate_target(t) for t in dict.fromkeys(target_ids)]
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    def _stop_in_chunks(
        self, target_ids: Sequence[str], options: Mapping[str, Any]
    ) -> list[tuple[str, StopAck | StopProviderError]]:
        chunks = self._chunks(target_ids)
        merged: dict[str, StopAck | StopProviderError] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(chunks)))) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._stop_chunk, chunk, options)
                for chunk in chunks
            ]
            for future in futures:
                merged.update(future.result())
        return [(t, merged[t]) for chunk in chunks for t in chunk]

    async def _astop_in_chunks(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], options: Mapping[str, Any]
    ) -> list[tuple[str, StopAck | StopProviderError]]:
        chunks = self._chunks(target_ids)
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def bounded(chunk: list[str]) -> dict[str, StopAck | StopProviderError]:
            async with semaphore:
                return await self._astop_chunk(client, chunk, options)

        merged: dict[str, StopAck | StopProviderError] = {}
        for part in await asyncio.gather(*(bounded(c) for c in chunks)):
            merged.update(part)
        return [(t, merged[t]) for chunk in chunks for t in chunk]

    def _map(
        self, fn: Callable[[str], T], target_ids: Sequence[str]
    ) -> list[tuple[str, T | StopProviderError]]:
        """Apply ``fn`` to every id with bounded concurrency; errors are returned, not raised."""

        def safe(tid: str) -> T | StopProviderError:
            try:
                return fn(tid)
            except StopProviderError as exc:
                return exc

        if len(target_ids) <= 1:
            return [(t, safe(t)) for t in target_ids]
        workers = min(self.max_concurrency, len(target_ids))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stop") as pool:
            # Each thread runs in a copy of this context: the wait's deadline bounds its requests too.
            futures = [pool.submit(contextvars.copy_context().run, safe, t) for t in target_ids]
            return [(t, f.result()) for t, f in zip(target_ids, futures, strict=True)]

    async def _amap(
        self, fn: Callable[[str], Awaitable[T]], target_ids: Sequence[str]
    ) -> list[tuple[str, T | StopProviderError]]:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def safe(tid: str) -> T | StopProviderError:
            async with semaphore:
                try:
                    return await fn(tid)
                except StopProviderError as exc:
                    return exc

        results = await asyncio.gather(*(safe(t) for t in target_ids))
        return list(zip(target_ids, results, strict=True))

    def _accepted(self, ack: StopAck) -> StopAck:
        verdict = "answered: nothing to stop" if ack.already_stopped else "accepted"
        self.log.info(
            "%s: stop of %s %r %s: %s", self.hook_name, self.target_noun, ack.target_id, verdict, ack.message
        )
        return ack

    def build_batch_stop_request(self, target_ids: Sequence[str], options: Mapping[str, Any]) -> ApiRequest:
        """One stop call for many ids (services with ``stop_batch_size``)."""
        raise NotImplementedError

    def parse_batch_stop_response(
        self, target_ids: Sequence[str], response: ApiResponse, options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        """Per id: an ack, or the error the service reported for that id alone."""
        raise NotImplementedError
