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

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, overload

from ._core import SYSTEM_TAG, From, Target, cast, cast_nowait, gen_call
from ._core import maybe_await as _maybe_await
from ._genserver import GenServer

__all__ = ["Agent"]

# PEP 696 defaults for type checkers only (the runtime needs typing_extensions for
# none of this): a plain subclass, ``class X(Agent)``, stays valid under
# ``mypy --strict`` and means ``Agent[Any]``.
if TYPE_CHECKING:
    from typing_extensions import TypeVar
else:
    from typing import TypeVar

_AGENT = "$agent"  # the head of an Agent request (served through the system channel)
_GET, _UPDATE, _GET_AND_UPDATE = "get", "update", "get_and_update"

#: the type of the agent's value: ``class Totals(Agent[dict[str, int]])``
if TYPE_CHECKING:
    T = TypeVar("T", default=Any)
else:
    T = TypeVar("T")
#: what a function given to ``Agent.get`` / ``get_and_update`` returns
R = TypeVar("R")


class Agent(GenServer[T]):
    """A GenServer wrapping a value; see the module docs.  Start it with ``Agent.start``.

    Generic in its value: a subclass ``Agent[dict[str, int]]`` types what its ``init``
    returns.  The client functions take the agent's PID or name, so the value a
    function receives there is ``Any``; what ``Agent.get`` returns is what the
    function returns.

    Its requests go through the system channel (as ``sys`` requests do), so an
    ``Agent.get`` aimed at a process that is not an Agent fails with a ``TypeError``
    naming what that process is, instead of being taken for one of its own calls.
    """

    _otp_requests: ClassVar[dict[str, str]] = {_AGENT: "_otp_agent_request"}

    async def init(self, *args: Any, **kwargs: Any) -> T:
        """The initial value is ``fn()`` for ``Agent.start(fn, ...)`` (None without ``fn``).

        A subclass may override ``init`` with its own arguments and return the value.
        """
        fn: Callable[[], Any] = args[0] if args else kwargs.get("fn", lambda: None)
        value: T = await _maybe_await(fn())
        return value

    async def _otp_agent_request(self, from_: From, request: Any, state: Any) -> Any:
        # A function that raises crashes the agent, as in Elixir (the caller gets
        # CallExit and the supervisor restarts the agent).
        _, op, fn = request
        if op == _GET:
            from_.reply(await _maybe_await(fn(state)))
            return state
        if op == _UPDATE:
            state = await _maybe_await(fn(state))
            from_.reply(None)
            return state
        result = await _maybe_await(fn(state))
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"Agent.get_and_update: the function must return (value, new_state), got {result!r}"
            )
        from_.reply(result[0])
        return result[1]

    async def handle_cast(self, request: Any, state: Any) -> Any:
        """Apply a function sent by ``Agent.cast``; other casts go to ``GenServer``."""
        if type(request) is tuple and len(request) == 3 and request[0] == _AGENT:
            return await _maybe_await(request[2](state))
        return await super().handle_cast(request, state)

    @overload
    @staticmethod
    async def get(
        agent: Target, fn: Callable[[Any], Awaitable[R]], timeout: float | None = 5.0
    ) -> R: ...

    @overload
    @staticmethod
    async def get(agent: Target, fn: Callable[[Any], R], timeout: float | None = 5.0) -> R: ...

    @staticmethod
    async def get(agent: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0) -> Any:
        """Return ``fn(value)``, computed in the agent; like ``Agent.get/3``.

        Raises:
            CallNoProc, CallExit, CallTimeout: as :func:`~anyotp.call`.
        """
        return await gen_call(agent, SYSTEM_TAG, (_AGENT, _GET, fn), timeout)

    @staticmethod
    async def update(agent: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0) -> None:
        """Replace the value with ``fn(value)`` and wait until done; like ``Agent.update/3``."""
        await gen_call(agent, SYSTEM_TAG, (_AGENT, _UPDATE, fn), timeout)

    @overload
    @staticmethod
    async def get_and_update(
        agent: Target,
        fn: Callable[[Any], Awaitable[tuple[R, Any]]],
        timeout: float | None = 5.0,
    ) -> R: ...

    @overload
    @staticmethod
    async def get_and_update(
        agent: Target, fn: Callable[[Any], tuple[R, Any]], timeout: float | None = 5.0
    ) -> R: ...

    @staticmethod
    async def get_and_update(
        agent: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0
    ) -> Any:
        """``fn(value)`` returns ``(result, new_value)``: store the new value, return the
        result; like ``Agent.get_and_update/3``."""
        return await gen_call(agent, SYSTEM_TAG, (_AGENT, _GET_AND_UPDATE, fn), timeout)

    @staticmethod
    async def cast(agent: Target, fn: Callable[[Any], Any]) -> None:
        """Replace the value with ``fn(value)`` without waiting; like ``Agent.cast/2``.

        Like :func:`~anyotp.cast`: delivered at once, a checkpoint every few casts.
        """
        await cast(agent, (_AGENT, _UPDATE, fn))

    @staticmethod
    def cast_nowait(agent: Target, fn: Callable[[Any], Any]) -> None:
        """:meth:`cast` as a plain function (any thread), like :func:`~anyotp.cast_nowait`."""
        cast_nowait(agent, (_AGENT, _UPDATE, fn))
