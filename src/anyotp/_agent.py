"""Agent: a process that holds one value, read and changed through functions.

Like Elixir's ``Agent``: the functions run inside the agent process, one at a time,
so updates never race::

    agent = await Agent.start(lambda: {"hits": 0}, task_group=tg)
    await Agent.update(agent, lambda s: {**s, "hits": s["hits"] + 1})
    assert await Agent.get(agent, lambda s: s["hits"]) == 1

Functions may be sync or async.  A function that raises crashes the agent (its
supervisor restarts it); the caller of ``get``/``update`` gets ``CallExit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._core import Target, call, cast, cast_nowait
from ._core import maybe_await as _maybe_await
from ._genserver import GenServer

__all__ = ["Agent"]

_GET, _UPDATE, _GET_AND_UPDATE = "$agent_get", "$agent_update", "$agent_get_and_update"


class Agent(GenServer):
    """A GenServer wrapping a value; see the module docs.  Start it with ``Agent.start``."""

    async def init(self, *args: Any, **kwargs: Any) -> Any:
        """The initial value is ``fn()`` for ``Agent.start(fn, ...)`` (None without ``fn``).

        A subclass may override ``init`` with its own arguments and return the value.
        """
        fn: Callable[[], Any] = args[0] if args else kwargs.get("fn", lambda: None)
        return await _maybe_await(fn())

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        op, fn = request
        if op == _GET:
            return await _maybe_await(fn(state)), state
        if op == _UPDATE:
            return None, await _maybe_await(fn(state))
        if op == _GET_AND_UPDATE:
            result = await _maybe_await(fn(state))
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"Agent.get_and_update: the function must return (value, new_state), "
                    f"got {result!r}"
                )
            return result
        return await super().handle_call(request, from_, state)

    async def handle_cast(self, request: Any, state: Any) -> Any:
        op, fn = request
        if op == _UPDATE:
            return await _maybe_await(fn(state))
        return await super().handle_cast(request, state)

    @staticmethod
    async def get(agent: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0) -> Any:
        """Return ``fn(value)``, computed in the agent; like ``Agent.get/3``.

        Raises:
            CallNoProc, CallExit, CallTimeout: as :func:`~anyotp.call`.
        """
        return await call(agent, (_GET, fn), timeout)

    @staticmethod
    async def update(agent: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0) -> None:
        """Replace the value with ``fn(value)`` and wait until done; like ``Agent.update/3``."""
        await call(agent, (_UPDATE, fn), timeout)

    @staticmethod
    async def get_and_update(
        agent: Target, fn: Callable[[Any], tuple[Any, Any]], timeout: float | None = 5.0
    ) -> Any:
        """``fn(value)`` returns ``(result, new_value)``: store the new value, return the
        result; like ``Agent.get_and_update/3``."""
        return await call(agent, (_GET_AND_UPDATE, fn), timeout)

    @staticmethod
    async def cast(agent: Target, fn: Callable[[Any], Any]) -> None:
        """Replace the value with ``fn(value)`` without waiting; like ``Agent.cast/2``.

        Like :func:`~anyotp.cast`: delivered at once, a checkpoint every few casts.
        """
        await cast(agent, (_UPDATE, fn))

    @staticmethod
    def cast_nowait(agent: Target, fn: Callable[[Any], Any]) -> None:
        """:meth:`cast` as a plain function (any thread), like :func:`~anyotp.cast_nowait`."""
        cast_nowait(agent, (_UPDATE, fn))
