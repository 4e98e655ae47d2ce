"""The provider's process-wide state, in one place: what one process remembers across hooks (paces,
tokens, list sizes, refused page sizes, warnings already given). Each module asks for its piece here
by name; ``reset()`` forgets all of it (tests, or a process that reuses its interpreter for a new
deployment). State tied to an event loop (shared clients, boards, lookups in flight) goes with its
loop and is not kept here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar


class _Clearable(Protocol):
    def clear(self) -> None: ...


_C = TypeVar("_C", bound=_Clearable)
_state: dict[str, Any] = {}


def shared(name: str, factory: Callable[[], _C]) -> _C:
    """The process's ``name`` (a dict, a set, ...), made by ``factory`` on first use."""
    if name not in _state:
        _state[name] = factory()
    return _state[name]


def reset() -> None:
    """Forget everything the process remembered."""
    for value in _state.values():
        value.clear()


def names() -> list[str]:
    return sorted(_state)
