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

import logging
from asyncio import Future
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias

import anyio

from ._actor import Actor, Callbacks, check_callbacks
from ._core import (
    CALL,
    CALL_TAG,
    CAST,
    CAST_TAG,
    PARENT_EXIT,
    PID,
    REDUCTIONS,
    SYSTEM,
    TIMEOUT,
    From,
    ProcessExit,
    decode,
    maybe_await,
    seconds,
)
from ._core import call as _call
from ._core import cast as _cast
from ._core import local_node as _local_node
from ._core import reply as _core_reply
from ._exceptions import CallError, NoProcess, SupervisorError
from ._task import Task

__all__ = [
    "Continue",
    "Directive",
    "GenServer",
    "NoReply",
    "Reply",
    "Stop",
    "abcast",
    "multi_call",
    "reply",
]

# PEP 696 defaults for type checkers only (the runtime needs typing_extensions for
# none of this): a plain subclass, ``class X(GenServer)``, stays valid under
# ``mypy --strict`` and means ``GenServer[Any]``.
if TYPE_CHECKING:
    from typing_extensions import TypeVar
else:
    from typing import TypeVar

log = logging.getLogger("anyotp.genserver")

TASK_SUCCESS = "$$success"
TASK_FAILURE = "$$failure"


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEEP: Any = _Sentinel("KEEP")
NO_REPLY: Any = _Sentinel("NO_REPLY")


#: Request heads that only some behaviours serve (through the system channel, so that
#: any other process answers with a clear error): head -> (what serves it, error type).
REQUEST_KINDS: dict[str, tuple[str, type[Exception]]] = {
    "$supervisor": ("a supervisor", SupervisorError),
    "$agent": ("an Agent", TypeError),
}


def wrong_kind(server: Any, request: Any) -> Exception:
    """The error a process answers a request meant for another kind of process with."""
    head = request[0] if type(request) is tuple and request else request
    what, error = REQUEST_KINDS.get(head, ("a process that knows it", ValueError))
    op = request[1] if type(request) is tuple and len(request) > 1 else request
    return error(
        f"{op}: {server!r} is a {type(server).__name__}, not {what}: send this request "
        f"to {what} (check the PID or name you passed)"
    )


def _unbound(fn: Any) -> Any:
    """``fn`` (a callback set on the instance) called the way the loop calls the
    class's: with the instance first."""

    def call(_self: Any, *args: Any) -> Any:
        return fn(*args)

    return call


class Directive:
    """Base of the values a callback may return instead of a plain state."""

    __slots__ = ()


class Continue:
    """An action: run ``handle_continue(arg, state)`` before the next message.

    Like ``{:continue, arg}``.  Use it in ``NoReply(state, Continue(arg))`` (also
    from ``init``) or ``Reply(reply, state, Continue(arg))``.
    """

    __slots__ = ("arg",)

    def __init__(self, arg: Any) -> None:
        self.arg: Any = arg

    def __repr__(self) -> str:
        return f"Continue({self.arg!r})"


Action: TypeAlias = Continue | float | None


class Reply(Directive):
    """``handle_call`` result: reply, new state and an action, like ``{:reply, r, s, a}``.

    Args:
        reply: sent to the caller.
        state: the new state.
        action: ``Continue(arg)``, an idle timeout in seconds (``"timeout"`` is then
            delivered to ``handle_info`` if no message arrives in time), or None.
    """

    __slots__ = ("action", "reply", "state")

    def __init__(self, reply: Any, state: Any, action: Action = None) -> None:
        self.reply: Any = reply
        self.state: Any = state
        self.action: Action = action

    def __repr__(self) -> str:
        return f"Reply({self.reply!r}, {self.state!r}, {self.action!r})"


class NoReply(Directive):
    """New state without replying now, like ``{:noreply, state, action}``.

    From ``handle_call`` it defers the reply: answer later with
    ``reply(from_, value)``, from this server or any other process (the caller still
    waits under its own timeout).  From the other callbacks (and ``init``) it carries
    an action with the new state.

    Args:
        state: the new state.
        action: ``Continue(arg)``, an idle timeout in seconds, or None.
    """

    __slots__ = ("action", "state")

    def __init__(self, state: Any, action: Action = None) -> None:
        self.state: Any = state
        self.action: Action = action

    def __repr__(self) -> str:
        return f"NoReply({self.state!r}, {self.action!r})"


class Stop(Directive):
    """Stop the server with ``reason`` after this callback, like ``{:stop, reason, ...}``.

    ``terminate(reason, state)`` runs with ``state`` if given (else the current one).
    From ``handle_call``, ``reply=`` is sent to the caller first; without it the
    caller's ``call`` raises ``CallExit`` with ``reason``.
    """

    __slots__ = ("reason", "reply", "state")

    def __init__(self, reason: Any = "normal", state: Any = KEEP, *, reply: Any = NO_REPLY):
        self.reason: Any = reason
        self.state: Any = state
        self.reply: Any = reply

    def __repr__(self) -> str:
        return f"Stop({self.reason!r})"


reply = _core_reply

#: The type of a GenServer's state: ``class Stack(GenServer[list[int]])`` types
#: ``init``'s result and the ``state`` of every callback.
if TYPE_CHECKING:
    State = TypeVar("State", default=Any)
else:
    State = TypeVar("State")

#: What ``handle_cast``, ``handle_info``, ``handle_continue`` and ``init`` return:
#: the new state, or a :class:`Directive` (``NoReply(state, action)``, ``Stop(...)``).
Result: TypeAlias = State | Directive
#: What ``handle_call`` returns: ``(reply, new_state)``, or a :class:`Directive`
#: (``Reply(...)``, ``NoReply(state)``, ``Stop(...)``).
CallResult: TypeAlias = tuple[Any, State] | Directive

_GENSERVER_CALLBACKS: Callbacks = {
    "init": ("*args", None),
    "handle_call": ("request, from_, state", True),
    "handle_cast": ("request, state", True),
    "handle_info": ("message, state", True),
    "handle_continue": ("continue_arg, state", None),
    "handle_task_end": ("child_pid, status, result, state", None),
    "terminate": ("reason, state", None),
    "run": ("state", True),
}
_ELIXIR_HINT = (
    " (unlike Elixir's handle_call/3 with the state last, anyotp's handle_call gets "
    "(request, from_, state), and handle_cast/handle_info get (message, state))"
)


class GenServer(Actor, Generic[State]):
    """Generic server behaviour: implement ``init`` and the ``handle_*`` callbacks.

    Generic in its state: subclass ``GenServer[list[int]]`` and the type checker
    checks that ``init`` returns a ``list[int]`` and that every callback takes and
    returns one (or a :class:`Directive`).  A plain ``GenServer`` subclass is untyped
    (its state is ``Any``).

    Do not override ``run``: the GenServer loop dispatches every message itself.
    Callbacks are checked when a subclass is defined: ``handle_call``,
    ``handle_cast`` and ``handle_info`` must be ``async def`` with the parameters
    below (a ``TypeError`` names the method and the fix otherwise).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_callbacks(cls, _GENSERVER_CALLBACKS, _ELIXIR_HINT)

    async def init(self, *args: Any, **kwargs: Any) -> Result[State]:
        """Return the initial state; gets the arguments given to ``start``.

        Or ``NoReply(state, action)`` (an action to run first), or ``Stop(reason)``
        (``start`` then fails with that reason).  The default returns None.
        """
        return None  # type: ignore[return-value]  # a subclass with a state overrides it

    async def handle_call(self, request: Any, from_: From, state: State) -> CallResult[State]:
        """Answer ``call(pid, request)``: return ``(reply, new_state)``.

        Or return ``Reply(reply, state, action)``, ``NoReply(state)`` (answer later
        with ``reply(from_, value)``) or ``Stop(reason, reply=...)``.

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

    async def handle_cast(self, request: Any, state: State) -> Result[State]:
        """Handle ``cast(pid, request)``: return the new state.

        Or ``NoReply(state, action)`` / ``Stop(reason)``.

        The default raises ``NotImplementedError`` (crashing the server).
        """
        raise NotImplementedError(
            f"{type(self).__name__} received cast {request!r} but does not implement "
            "handle_cast(self, request, state)"
        )

    async def handle_info(self, message: Any, state: State) -> Result[State]:
        """Handle any other message (``send``, monitors' DOWN, EXIT): return the new state.

        The default logs the unexpected message and keeps the state.
        """
        log.warning(
            "%s %r received an unexpected message: %r", type(self).__name__, self._otp_pcb, message
        )
        return state

    async def handle_task_end(
        self, child_pid: PID, status: str, result: Any, state: State
    ) -> Result[State]:
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

        def bound() -> Any:
            return func(*args, **kwargs)

        handle = await Task.spawn_and_notify(
            bound, self.children, self.pid, TASK_SUCCESS, TASK_FAILURE
        )
        return handle.pid

    async def handle_continue(self, continue_arg: Any, state: State) -> Result[State]:
        """Run work that a callback deferred with ``Continue(arg)``: return the new state.

        Called right after the callback that returned the ``Continue``, before the next
        message is taken, like ``handle_continue/2``.  May itself return a directive.
        The default raises ``NotImplementedError``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} returned Continue({continue_arg!r}) but does not "
            "implement handle_continue(self, continue_arg, state)"
        )

    def _otp_check_init(self, result: Any) -> Any:
        if isinstance(result, Stop):  # like {stop, Reason} from init: start fails
            raise ProcessExit(result.reason)
        return result

    def format_status(self, state: State) -> Any:
        """Return what :func:`~anyotp.process_info` shows of ``state`` (hide secrets here).

        Like ``format_status/1``.  The default shows the state as it is.
        """
        return state

    # ----------------------------------------------------------------- the loop

    async def _otp_serve(self, state: Any) -> None:
        if type(self).run is not GenServer.run:  # a subclass wrote its own loop body
            await Actor._otp_serve(self, state)
            return
        proc = self._otp_pcb
        assert proc is not None
        timeout: float | None = None
        if isinstance(state, Directive):  # init returned NoReply(state, action)
            state, timeout = await self._otp_apply(state)
            proc.state = state
        mbox = proc.mbox
        q = mbox.queue
        checkpoint = proc.loop.checkpoint
        # Locals, not attribute or global lookups per message (bench: casts, fan_in)
        # the class's functions, called with self: no bound method held per idle
        # server (bench: million, spawn memory) -- unless the instance has its own
        # (a check through the bound methods: reading __dict__ would make the
        # instance's dict a separate object)
        handle_call: Any = type(self).handle_call
        handle_cast: Any = type(self).handle_cast
        if (
            getattr(self.handle_call, "__func__", None) is not handle_call
            or getattr(self.handle_cast, "__func__", None) is not handle_cast
        ):
            handle_call = _unbound(self.handle_call)
            handle_cast = _unbound(self.handle_cast)
        call_tag, cast_tag, directive, budget = CALL_TAG, CAST_TAG, Directive, REDUCTIONS
        new_waiter = mbox.new_waiter
        # on asyncio an idle wait awaits a bare Future (see Mailbox; bench: call_latency)
        aio = mbox.aio
        res: Any  # a callback's result: a new state, a (reply, state) or a Directive
        w: Any  # the idle wait's waiter, or on asyncio its bare Future
        run = 0  # messages taken in a row without waiting (the reduction budget)
        # The type of the last state a callback returned that was not a Directive:
        # the same type again is a plain state without an isinstance, which costs
        # ~70 ns on a type that is not a subclass (it looks up `__class__` too;
        # bench: cast_throughput)
        plain: type = type(None)
        msg: Any = None
        try:
            while True:
                if mbox.saved:  # messages a selective receive in a callback skipped
                    msg = mbox.saved.popleft()
                elif q:
                    msg = q.popleft()
                    if mbox.marked:  # invalidate receive marks, once there are any
                        mbox.taken += 1  # (Mailbox.marked; bench: cast_throughput)
                    # the reduction budget: a mailbox that never empties still lets
                    # the loop run (and a cancellation in) every REDUCTIONS messages;
                    # a server that waits between messages never pays it (bench:
                    # fan_in, casts)
                    run += 1
                    if run == budget:
                        proc.reductions += run
                        run = 0
                        if checkpoint is not None:
                            await checkpoint()
                elif timeout is None:
                    proc.reductions += run
                    run = 0
                    # Mailbox.arm and disarm, inlined: publish a waiter, re-check,
                    # wait (no `get` frame on every resume; bench: call_latency)
                    if mbox.waiter is not None:
                        mbox.arm()  # raises: two receivers
                    mbox.waiter = w = new_waiter() if aio is None else Future(loop=aio)
                    if q:  # a message raced in before the waiter was published
                        mbox.waiter = None
                        continue
                    try:
                        await w
                    finally:
                        mbox.waiter = None
                    continue
                else:
                    msg = await mbox.get(timeout)
                    if msg is TIMEOUT:  # idle timeout: like OTP's `timeout` message
                        msg = "timeout"
                idle, timeout = timeout, None
                # The two commonest envelopes are recognised and handled here, the
                # rest by the one decoder (a frame fewer per call and cast: bench:
                # call_latency, casts).
                if type(msg) is tuple:
                    n = len(msg)
                    if n == 2 and msg[0] is cast_tag:
                        res = await handle_cast(self, msg[1], state)
                        if type(res) is plain:
                            state = res
                        elif isinstance(res, directive):
                            state, timeout = await self._otp_apply(res)
                        else:
                            state = res
                            plain = type(res)
                        proc.state = state
                        continue
                    if n == 3 and msg[0] is call_tag:
                        from_ = msg[1]
                        res = await handle_call(self, msg[2], from_, state)
                        if type(res) is tuple and len(res) == 2:  # the fast path
                            from_.reply(res[0])
                            state = proc.state = res[1]
                            continue
                        res = self._otp_call_directive(res, from_, msg[2])
                        if isinstance(res, directive):
                            state, timeout = await self._otp_apply(res)
                        else:
                            state = res
                        proc.state = state
                        continue
                kind = decode(msg, proc.parent, self.trap_exit)
                if kind == CALL:  # an envelope with a str tag equal to CALL_TAG
                    from_ = msg[1]
                    res = await handle_call(self, msg[2], from_, state)
                    if type(res) is tuple and len(res) == 2:
                        from_.reply(res[0])
                        state = proc.state = res[1]
                        continue
                    res = self._otp_call_directive(res, from_, msg[2])
                elif kind == CAST:
                    res = await handle_cast(self, msg[1], state)
                elif kind == SYSTEM:
                    state = await self._otp_system(msg[1], msg[2], state)
                    proc.state = state
                    timeout = idle  # like gen_server: a system message re-arms the idle timeout
                    continue
                elif kind == PARENT_EXIT:
                    # OTP: a gen_server that traps exits stops when its parent does.
                    raise ProcessExit(msg[2])
                elif (
                    type(msg) is tuple
                    and len(msg) == 3
                    and type(msg[1]) is PID
                    and msg[0] in (TASK_SUCCESS, TASK_FAILURE)
                ):
                    status = "success" if msg[0] == TASK_SUCCESS else "failure"
                    res = await maybe_await(self.handle_task_end(msg[1], status, msg[2], state))
                else:
                    res = await self.handle_info(msg, state)
                if isinstance(res, directive):
                    state, timeout = await self._otp_apply(res)
                else:
                    state = res
                proc.state = state
        except BaseException:
            # for a crash report: the message being handled (set here, not per
            # message: bench: casts, call_latency)
            proc.last_message = msg
            raise

    #: system request heads this behaviour serves, with the method that serves them
    #: (``(from_, request, state) -> state``); see :data:`REQUEST_KINDS`
    _otp_requests: ClassVar[dict[str, str]] = {}

    async def _otp_system(self, from_: From, request: Any, state: Any) -> Any:
        """Answer a system request between messages: ``sys``-style introspection, or a
        request meant for a kind of process (a supervisor, an Agent)."""
        op = request[0]
        if op == "get_state":
            from_.reply(state)
            return state
        if op == "replace_state":
            try:
                state = await maybe_await(request[1](state))
            except Exception as e:  # like sys:replace_state/2: the caller gets the error
                from_.fail(e)
                return state
            from_.reply(state)
            return state
        method = self._otp_requests.get(op)
        if method is None:
            from_.fail(wrong_kind(self, request))
            return state
        new_state: Any = await getattr(self, method)(from_, request, state)
        return new_state

    def _otp_call_directive(self, res: Any, from_: From, request: Any) -> Directive:
        if isinstance(res, Reply):
            from_.reply(res.reply)
            return res
        if isinstance(res, NoReply):
            return res
        if isinstance(res, Stop):
            if res.reply is not NO_REPLY:
                from_.reply(res.reply)
            return res
        raise TypeError(
            f"{type(self).__name__}.handle_call({request!r}, ...) returned {res!r}; it must "
            "return a (reply, new_state) tuple, Reply(...), NoReply(...) or Stop(...)"
        )

    async def _otp_apply(self, res: Directive) -> tuple[Any, float | None]:
        """Carry out a directive: returns (new state, idle timeout or None)."""
        proc = self._otp_pcb
        assert proc is not None
        while True:
            if type(res) is Stop:
                if res.state is not KEEP:
                    proc.state = res.state
                raise ProcessExit(res.reason)
            assert isinstance(res, Reply | NoReply)
            state, action = res.state, res.action
            if action is None:
                return state, None
            if type(action) is Continue:
                proc.state = state
                nxt = await maybe_await(self.handle_continue(action.arg, state))
                if not isinstance(nxt, Directive):
                    return nxt, None
                res = nxt
                continue
            if isinstance(action, int | float) and not isinstance(action, bool) and action >= 0:
                return state, seconds(action)  # an int too large for a float: inf
            raise TypeError(
                f"{type(self).__name__}: the action {action!r} in {res!r} is not a "
                "Continue(arg) or an idle timeout in seconds"
            )

    async def run(self, state: State) -> Any:
        """Not used: the GenServer loop dispatches messages to the ``handle_*`` callbacks."""
        raise NotImplementedError


# ------------------------------------------------------------- multi_call / abcast


def _nodes_for(what: str, name: Any, nodes: list[str] | None) -> tuple[str, list[str]]:
    if type(name) is not str:
        raise TypeError(
            f"{what}() takes a locally registered name (a str), got "
            f"{type(name).__name__} {name!r}: register the server on each node under "
            "the same name"
        )
    here = _local_node()[0]
    return here, [here] if nodes is None else list(nodes)


async def multi_call(
    name: str, request: Any, timeout: float | None = 5.0, nodes: list[str] | None = None
) -> tuple[list[tuple[str, Any]], list[str]]:
    """Call the server registered as ``name`` on each of ``nodes``; gather the replies.

    Like ``gen_server:multi_call/4``: the calls run concurrently, each bounded by
    ``timeout``, so the whole takes at most about ``timeout`` seconds.  A node where
    no process is registered under ``name``, whose server exits before replying or
    does not reply in time (its late reply is dropped) is a *bad node*; so, until
    distribution reaches it, is any node other than this one.

    Args:
        name: the locally registered name of the server on every node.
        request: passed to each server's ``handle_call``.
        timeout: seconds each call waits; None waits forever.
        nodes: node names; None means this node only (``local_node()[0]``).

    Returns:
        ``(replies, bad_nodes)``: ``replies`` is a list of ``(node, reply)``,
        ``bad_nodes`` a list of node names, both in the order of ``nodes``.

    Raises:
        TypeError: ``name`` is not a str.
    """
    here, targets = _nodes_for("multi_call", name, nodes)
    outcomes: list[tuple[bool, Any]] = [(False, None)] * len(targets)

    async def one(i: int) -> None:
        try:
            outcomes[i] = (True, await _call(name, request, timeout))
        except CallError:
            pass

    async with anyio.create_task_group() as tg:
        for i, node in enumerate(targets):
            if node == here:
                tg.start_soon(one, i)
    replies = [(node, got[1]) for node, got in zip(targets, outcomes, strict=True) if got[0]]
    bad = [node for node, got in zip(targets, outcomes, strict=True) if not got[0]]
    return replies, bad


async def abcast(name: str, request: Any, nodes: list[str] | None = None) -> None:
    """Cast ``request`` to the server registered as ``name`` on each of ``nodes``.

    Like ``gen_server:abcast/3``: fire and forget; a node where nothing is
    registered under ``name`` (or, until distribution reaches it, any node other
    than this one) is skipped silently, as Erlang drops such casts.

    Args:
        name: the locally registered name of the server on every node.
        request: passed to each server's ``handle_cast``.
        nodes: node names; None means this node only (``local_node()[0]``).

    Raises:
        TypeError: ``name`` is not a str.
    """
    here, targets = _nodes_for("abcast", name, nodes)
    for node in targets:
        if node == here:
            try:
                await _cast(name, request)
            except NoProcess:
                pass
