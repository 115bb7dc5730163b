"""GenServer: a process that holds state and serves calls, casts and other messages.

What it is
    A :class:`GenServer` subclass implements callbacks; the runtime owns the loop.
    Clients talk to it with :func:`~anyotp.call` (wait for a reply) and
    :func:`~anyotp.cast` (fire and forget); anything else sent to it is an *info*
    message.  Like Elixir's ``GenServer`` / Erlang's ``gen_server``.

Example::

    class Stack(GenServer):
        async def init(self):
            return []

        async def handle_call(self, request, from_, state):
            match request:
                case "pop":
                    return (state[0], state[1:]) if state else (None, [])

        async def handle_cast(self, request, state):
            match request:
                case ("push", item):
                    return [item, *state]

    async with anyio.create_task_group() as tg:
        pid = await Stack.start(task_group=tg)
        await cast(pid, ("push", 1))
        assert await call(pid, "pop") == 1

Client / server split
    ``call``/``cast`` run in the client; ``handle_*`` run in the server's task, one
    message at a time, so the state needs no lock.  Return a new state rather than
    mutating the old one.

Timeouts
    ``call`` waits 5 seconds by default (``timeout=None`` waits forever) and raises
    :class:`~anyotp.CallTimeout`; the server is not told, and its late reply is
    dropped.  If the server dies first, the call raises :class:`~anyotp.CallExit` at
    once, with the server's exit reason.

When not to use it
    For a value shared by many writers, prefer ``Agent``-style simple state or plain
    data; for one-off concurrent work, use :class:`~anyotp.Task`.  A GenServer is a
    serialisation point: long work in a handler delays every caller.  Hand such work
    to :meth:`GenServer.spawn_task` and finish it in :meth:`handle_task_end`.

Exit reasons
    A handler that raises crashes the server with that exception (logged once); its
    supervisor restarts it.  The caller of the crashing ``call`` gets ``CallExit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._actor import Actor
from ._core._ids import PID
from ._core._process import CALL_TAG, CAST_TAG, From, _Exit, _maybe_await, log

__all__ = ["GenServer"]

TASK_SUCCESS = "$$success"
TASK_FAILURE = "$$failure"


class GenServer(Actor):
    """Generic server behaviour: implement ``init`` and the ``handle_*`` callbacks.

    Do not override ``run``: the GenServer loop dispatches every message itself.
    """

    async def init(self, *args: Any, **kwargs: Any) -> Any:
        """Return the initial state; gets the arguments given to ``start``."""
        return None

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        """Answer ``call(pid, request)``: return ``(reply, new_state)``.

        Args:
            request: what the client passed to ``call``.
            from_: the caller; pass it to :func:`~anyotp.reply` to answer later.
            state: the current state.

        The default raises ``NotImplementedError`` (crashing the server, as Elixir's
        default ``handle_call`` does).
        """
        raise NotImplementedError(
            f"{type(self).__name__} received call {request!r} but does not implement "
            "handle_call(self, request, from_, state)"
        )

    async def handle_cast(self, request: Any, state: Any) -> Any:
        """Handle ``cast(pid, request)``: return the new state.

        The default raises ``NotImplementedError`` (crashing the server).
        """
        raise NotImplementedError(
            f"{type(self).__name__} received cast {request!r} but does not implement "
            "handle_cast(self, request, state)"
        )

    async def handle_info(self, message: Any, state: Any) -> Any:
        """Handle any other message (``send``, monitors' DOWN, EXIT): return the new state.

        The default logs the unexpected message and keeps the state.
        """
        log.warning(
            "%s %r received an unexpected message: %r", type(self).__name__, self._pid, message
        )
        return state

    async def handle_task_end(self, child_pid: PID, status: str, result: Any, state: Any) -> Any:
        """A task started with :meth:`spawn_task` finished: return the new state.

        Args:
            child_pid: the task's PID (as returned by ``spawn_task``).
            status: ``"success"`` or ``"failure"``.
            result: the task's return value, or the exception that failed it.
            state: the current state.
        """
        return state

    async def spawn_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> PID:
        """Run ``func(*args, **kwargs)`` (sync or async) as a task owned by this server.

        When it finishes, :meth:`handle_task_end` is called (between messages) with
        ``"success"`` and its value or ``"failure"`` and its exception.  The task is
        stopped if the server exits first.

        Returns:
            The task's PID.
        """
        from ._task import Task

        def bound() -> Any:
            return func(*args, **kwargs)

        handle = await Task.spawn_and_notify(
            bound, self.children, self.pid, TASK_SUCCESS, TASK_FAILURE
        )
        return handle.pid

    # ----------------------------------------------------------------- the loop

    async def _serve(self, state: Any) -> None:
        if type(self).run is not GenServer.run:  # a subclass wrote its own loop body
            await Actor._serve(self, state)
            return
        mbox = self._mbox
        saved = mbox._saved
        q = mbox._q
        get = mbox.get
        handle_call = self.handle_call
        handle_cast = self.handle_cast
        while True:
            if saved:
                msg = saved.popleft()
            elif q:
                msg = q.popleft()
            else:
                msg = await get()
            if type(msg) is tuple:
                n = len(msg)
                if n == 3 and msg[0] == CALL_TAG:
                    from_ = msg[1]
                    res = await handle_call(msg[2], from_, state)
                    if type(res) is tuple and len(res) == 2:
                        from_.reply(res[0])
                        state = res[1]
                    else:
                        state = self._odd_call_result(res, msg[2])
                    self._state = state
                    continue
                if n == 2 and msg[0] == CAST_TAG:
                    state = await handle_cast(msg[1], state)
                    self._state = state
                    continue
                if n == 3 and type(msg[1]) is PID:
                    tag = msg[0]
                    if tag in (TASK_SUCCESS, TASK_FAILURE):
                        status = "success" if tag == TASK_SUCCESS else "failure"
                        state = await _maybe_await(
                            self.handle_task_end(msg[1], status, msg[2], state)
                        )
                        self._state = state
                        continue
                    if tag == "EXIT" and msg[1] == self._parent and self.trap_exit:
                        # OTP: a gen_server that traps exits stops when its parent does.
                        raise _Exit(msg[2])
            state = await self.handle_info(msg, state)
            self._state = state

    def _odd_call_result(self, res: Any, request: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__}.handle_call({request!r}, ...) returned {res!r}; it must "
            "return a (reply, new_state) tuple"
        )

    async def run(self, state: Any) -> Any:
        """Not used: the GenServer loop dispatches messages to the ``handle_*`` callbacks."""
        raise NotImplementedError
