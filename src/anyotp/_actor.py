"""Actors: the base behaviour, a process whose body you write as ``run(state)``.

An :class:`Actor` subclass implements ``init(*args, **kwargs) -> state`` and
``run(state) -> state``; the runtime calls ``run`` in a loop, and ``run`` normally
awaits ``self.receive(...)`` with ``(pattern, handler)`` pairs::

    class Echo(Actor):
        async def run(self, state):
            return await self.receive(
                (("ping", PID), lambda sender: send_nowait(sender, "pong") or state),
                ("stop", lambda: self.stop()),
            )

    async with anyio.create_task_group() as tg:
        pid = await Echo.start(task_group=tg)

``start`` waits for ``init`` to return, as ``proc_lib:start`` does, and raises
:class:`~anyotp.StartError` if it fails.  A crash in ``run`` (or in a handler) makes
the actor exit with the exception as its reason: it is logged once, linked processes
and monitors are told, and the task group it runs in is *not* disturbed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import MethodType
from typing import Any, Protocol, TypeVar, overload

import anyio

from ._core import (
    DEAD,
    EXITING,
    PID,
    REDUCTIONS,
    RUNNING,
    STARTING,
    ChildTasks,
    Proc,
    ProcessExit,
    Shutdown,
    Target,
    Waiter,
    check_timeout,
    child_tasks,
    compile_one,
    compile_patterns,
    current_process,
    demonitor,
    exit_process,
    is_awaitable,
    log,
    lookup,
    maybe_await,
    monitor,
    noproc_message,
    require_current,
    route,
    spawn,
    stop,
    wait_dead,
)
from ._core import on_exit as add_exit_hook
from ._exceptions import (
    CallError,
    CallNoProc,
    CallTimeout,
    InvalidPattern,
    NoProcess,
    ReceiveTimeout,
)

__all__ = ["Actor", "ActorHandle"]

A = TypeVar("A", bound="Actor")

_MASK = REDUCTIONS - 1
_NOT_A_PAIR = (
    "receive() takes (pattern, handler) pairs, got {!r}: wrap it as "
    "(pattern, handler), e.g. (('data', ANY), lambda x: x)"
)


class ActorHandle:
    """Handle to a running actor, returned by :meth:`Actor.spawn_child_actor`.

    Attributes:
        pid: the actor's PID.
    """

    __slots__ = ("_proc", "pid")

    def __init__(self, proc: Proc) -> None:
        self._proc = proc
        self.pid: PID = proc.pid

    async def stop(self, reason: Any = "shutdown", timeout: float | None = 5.0) -> Any:
        """Ask the actor to exit with ``reason`` and wait until it has.

        Args:
            reason: its exit reason (``"shutdown"`` by default).
            timeout: seconds to wait before killing it; None waits forever.

        Returns:
            The reason it actually exited with.
        """
        return await stop(self._proc, reason, timeout)

    async def wait(self) -> Any:
        """Wait until the actor exits; returns its exit reason."""
        return await wait_dead(self._proc)

    def __repr__(self) -> str:
        return f"<ActorHandle {self.pid!r}>"


#: What a callback must look like: its parameters after ``self``, and whether it
#: must be (True), must not be (False) or may be (None) an ``async def``.
Callbacks = dict[str, tuple[str, bool | None]]


def check_callbacks(cls: type, callbacks: Callbacks, hint: str = "") -> None:
    """Check, when a behaviour subclass is defined, the callbacks it overrides:
    coroutine or not, and how many arguments.  Mistakes are caught at class
    definition, not on the first message.

    Raises:
        TypeError: naming the method, what is wrong and the fix.
    """
    for name, (params, want_async) in callbacks.items():
        fn = cls.__dict__.get(name)
        if fn is None or not callable(fn):
            continue
        fn = inspect.unwrap(fn)
        wanted = [p.strip() for p in params.split(",") if p.strip()]
        shape = f"{name}(self{''.join(', ' + p for p in wanted)})"
        if params == "*args":
            shape = f"{name}(self, ...)"
        is_async = inspect.iscoroutinefunction(fn)
        if want_async is True and not is_async:
            raise TypeError(
                f"{cls.__name__}.{name} must be a coroutine function: write "
                f"`async def {shape}` (the runtime awaits it)"
            )
        if want_async is False and is_async:
            raise TypeError(
                f"{cls.__name__}.{name} must be a plain function: write `def {shape}` "
                f"(it runs on the server's thread){hint}"
            )
        if params == "*args":  # any arguments (init gets what start was given)
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        positional = [
            p
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
            continue
        required = [p for p in positional if p.default is p.empty]
        if not (len(required) <= len(wanted) <= len(positional)):
            got = ", ".join(["self", *(p.name for p in positional)])
            raise TypeError(
                f"{cls.__name__}.{name}({got}) takes {len(positional)} argument(s) after "
                f"self, but the runtime calls it as {shape}: give it exactly those "
                f"parameters{hint}"
            )


def task_group_target(cls_name: str, task_group: Any) -> tuple[Any, Proc | None]:
    """Resolve ``task_group=``: an anyio TaskGroup, or ``self.children`` (owned start)."""
    if task_group is None:
        raise TypeError(
            f"{cls_name}.start() needs task_group=: pass an anyio task group "
            "(`async with anyio.create_task_group() as tg: await "
            f"{cls_name}.start(task_group=tg)`), or `self.children` inside an actor"
        )
    if isinstance(task_group, ChildTasks):
        owner = task_group.owner
        if owner.status is not RUNNING and owner.status is not STARTING:
            raise RuntimeError(f"{owner!r} is exiting: it cannot start children")
        return owner.tg, owner
    if not hasattr(task_group, "start_soon"):
        raise TypeError(
            f"{cls_name}.start(task_group=...) takes an anyio TaskGroup, got "
            f"{type(task_group).__name__} {task_group!r}"
        )
    return task_group, None


class Actor:
    """Base actor: subclass it and implement :meth:`run` (and usually :meth:`init`).

    Lifecycle: ``init(*args, **kwargs)`` -> ``run(state)`` in a loop ->
    ``terminate(reason, state)``.  ``terminate`` runs on every exit except a kill,
    including cancellation of the surrounding task group.

    Reserved names: a subclass may use any attribute name except the public ones
    below (``pid``, ``trap_exit``, ``exit_reason``, ``children``, the callbacks and
    methods) and names that start with ``_otp_``, which are the runtime's.

    Attributes:
        trap_exit: when True, exit signals from linked processes arrive as
            ``("EXIT", pid, reason)`` messages instead of killing this process (except
            ``"kill"``).  Set it as a class attribute or in ``init``; like
            ``process_flag(trap_exit, true)``.
        log_crashes: False keeps this process's crashes out of the log.
    """

    trap_exit: bool = False
    #: False keeps this process's crashes out of the log (an expected failure; its
    #: links, monitors and supervisor are told as usual).  ``ChildSpec(log_crashes=)``
    #: overrides it per child.
    log_crashes: bool = True
    #: the process control block, once started (the one runtime field of the object)
    _otp_pcb: Proc | None = None
    #: set when init failed: OTP does not call terminate then
    _otp_no_terminate: bool = False
    #: on_exit callbacks of children that died while this actor was exiting
    _otp_exit_callbacks: list[tuple[Callable[[PID, Any], Any], PID, Any]] | None = None

    @property
    def pid(self) -> PID:
        """This process's PID.

        Raises:
            RuntimeError: the process was never started.
        """
        pcb = self._otp_pcb
        if pcb is None:
            raise RuntimeError(
                f"{type(self).__name__} has no PID: it was never started "
                f"(use `await {type(self).__name__}.start(task_group=tg)`)"
            )
        return pcb.pid

    @property
    def exit_reason(self) -> Any:
        """The reason the process exited with, once dead (None before)."""
        pcb = self._otp_pcb
        return None if pcb is None or pcb.status is not DEAD else pcb.exit_reason

    def __repr__(self) -> str:
        pcb = self._otp_pcb
        if pcb is None:
            return f"<{type(self).__name__} not started>"
        return repr(pcb)

    def _otp_proc(self) -> Proc:
        pcb = self._otp_pcb
        assert pcb is not None, "the process is not started"
        return pcb

    def _otp_started(self, what: str) -> Proc:
        pcb = self._otp_pcb
        if pcb is None:
            raise RuntimeError(f"{type(self).__name__}.{what}: the actor was never started")
        return pcb

    # ------------------------------------------------------------- callbacks

    async def init(self, *args: Any, **kwargs: Any) -> Any:
        """Return the initial state; gets the arguments given to ``start``.

        Raising here makes ``start`` raise :class:`~anyotp.StartError`.
        """
        return None

    async def run(self, state: Any) -> Any:
        """One turn of the actor's loop: usually ``await self.receive(...)``.

        Returns the new state.  Called again and again until the actor exits.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `async def run(self, state)` "
            "(or subclass GenServer, which implements it)"
        )

    async def terminate(self, reason: Any, state: Any) -> None:
        """Clean up; called with the exit reason and the last state.

        ``reason`` is ``"normal"``, ``"shutdown"``, another value given to ``stop``,
        or the exception that crashed the actor.  Not called when the actor is killed,
        nor when ``init`` failed (``start`` raised ``StartError``), as in OTP.
        """

    # --------------------------------------------------------------- runtime

    async def _otp_boot(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> Any:
        try:
            state = self.init(*args, **kwargs)
            # maybe_await, inlined: a coroutine fewer per start (bench: spawn, million)
            if is_awaitable(state):
                state = await state
            state = self._otp_check_init(state)
        except BaseException:
            self._otp_no_terminate = True  # OTP: a failed init does not call terminate
            raise
        proc.state = state
        proc.status = RUNNING
        ack.set(None)
        return state

    def _otp_check_init(self, result: Any) -> Any:
        """Validate what ``init`` returned, before ``start`` returns (a subclass hook)."""
        return result

    async def _otp_serve(self, state: Any) -> None:
        proc = self._otp_pcb
        assert proc is not None
        run = self.run
        checkpoint = proc.loop.checkpoint
        while True:
            state = await run(state)
            proc.state = state
            # the reduction budget: a run() that never awaits still lets the loop run
            # (and a cancellation in) every REDUCTIONS turns
            proc.reductions = r = proc.reductions + 1
            if not r & _MASK and checkpoint is not None:
                await checkpoint()

    async def _otp_cleanup(self, reason: Any) -> Any:
        proc = self._otp_pcb
        assert proc is not None
        if self._otp_exit_callbacks:
            await self._otp_run_exit_callbacks(proc)
        if self._otp_no_terminate:
            return reason
        try:
            await maybe_await(self.terminate(reason, proc.state))
        except ProcessExit as e:  # stop(r) in terminate: exit with r (Erlang: exit/1 there)
            return e.reason
        except Exception as e:
            log.error("%r: terminate(%r, ...) raised %r", proc, reason, e, exc_info=e)
        return reason

    async def _otp_run_exit_callbacks(self, proc: Proc) -> None:
        """Run the ``on_exit`` callbacks of children stopped by this actor's exit."""
        pending = self._otp_exit_callbacks
        self._otp_exit_callbacks = None
        for callback, pid, why in pending or ():
            try:
                await maybe_await(callback(pid, why))
            except Exception as e:  # the owner is exiting anyway: log and go on
                log.error("%r: on_exit callback %r raised %r", proc, callback, e, exc_info=e)

    async def receive(
        self, *patterns: tuple[Any, Callable[..., Any]], timeout: float | None = None
    ) -> Any:
        """Take the first message matching one of ``patterns`` and handle it.

        Each argument is a ``(pattern, handler)`` pair; the first message (oldest
        first) that matches any pattern is removed, and the handler of the first
        pattern it matches is called with the values the pattern extracts.  Messages
        that match nothing stay in the mailbox, in order.  Like Erlang's ``receive``.

        Args:
            *patterns: ``(pattern, handler)`` pairs; a handler may be sync or async.
            timeout: seconds to wait for a match; None waits forever; 0 only looks
                at messages already there.

        Returns:
            What the handler returned (awaited if it was awaitable).

        Raises:
            ReceiveTimeout: nothing matched within ``timeout`` (a ``TimeoutError``).
            InvalidPattern: an argument is not a ``(pattern, handler)`` pair, or a
                pattern contains a dict/set literal.
        """
        proc = self._otp_pcb
        if proc is None:
            proc = self._otp_started("receive()")
        if timeout is not None and not (type(timeout) is float and timeout >= 0):
            timeout = check_timeout(timeout, "receive()")  # an int made a float
        if len(patterns) == 1:  # the common shape: no loop, no list (bench: ping_pong)
            p = patterns[0]
            if type(p) is not tuple or len(p) != 2 or not callable(p[1]):
                raise InvalidPattern(_NOT_A_PAIR.format(p))
            key = compile_one(p[0])
        else:
            for p in patterns:
                if type(p) is not tuple or len(p) != 2 or not callable(p[1]):
                    raise InvalidPattern(_NOT_A_PAIR.format(p))
            if not patterns:
                raise InvalidPattern("receive() needs at least one (pattern, handler) pair")
            key = compile_patterns(tuple([p[0] for p in patterns]))
        mbox = proc.mbox
        extracted: tuple[Any, ...] | None = None
        index = 0
        if timeout is None and key is mbox.key and not mbox.saved:
            # The same receive as the last one, nothing skipped: wait here and look at
            # the oldest message without a Mailbox.receive coroutine to create and
            # resume through (bench: ping_pong).  A message that matches nothing, a
            # timeout or another signature take Mailbox.receive.
            q = mbox.queue
            while not q:
                w = mbox.arm()
                if w is not None:
                    try:
                        await w
                    finally:
                        mbox.waiter = None
            msg = q[0]
            # the first pattern without a loop: no range object per receive when
            # there is one pattern (bench: ping_pong)
            extracted = key[0](msg)
            if extracted is None:
                for index in range(1, len(key)):
                    extracted = key[index](msg)
                    if extracted is not None:
                        break
            if extracted is not None:
                q.popleft()
                if mbox.marked:  # invalidate receive marks, once there are any
                    mbox.taken += 1
        if extracted is None:
            index, extracted = await mbox.receive(key, timeout)
        proc.reductions = r = proc.reductions + 1
        if not r & _MASK:  # a receive that keeps finding queued messages yields too
            checkpoint = proc.loop.checkpoint
            if checkpoint is not None:
                await checkpoint()
        result = patterns[index][1](*extracted)
        # Await only what needs it: a handler that returns None is done (bench:
        # ping_pong), others are looked up by type (is_awaitable)
        if result is not None and is_awaitable(result):
            return await result
        return result

    # ------------------------------------------------------------ starting

    @classmethod
    async def start(
        cls, *args: Any, task_group: Any = None, name: Any = None, **kwargs: Any
    ) -> PID:
        """Start an instance in ``task_group`` and return its PID once ``init`` returned.

        Like ``gen_server:start/3``: the new process is not linked to the caller.

        Args:
            *args: passed to ``init``.
            task_group: an anyio ``TaskGroup`` to run in, or ``self.children`` of a
                running actor (the new process is then owned by that actor and stopped
                when it exits).
            name: register the process under this name, atomically with its start: a
                str (like ``register``) or a via-name ``("via", registry, key)``.
            **kwargs: passed to ``init``.

        Raises:
            TypeError: no ``task_group`` was given.
            StartError: ``init`` raised (chained as ``__cause__``), or ``name`` is taken.
        """
        tg, owner = task_group_target(cls.__name__, task_group)
        return await spawn(cls(), args, kwargs, tg, owner=owner, name=name)

    @classmethod
    async def start_link(
        cls, *args: Any, task_group: Any = None, name: Any = None, **kwargs: Any
    ) -> PID:
        """Like :meth:`start`, and link the new process to the calling process.

        Like ``gen_server:start_link/3``.  If ``init`` fails the link is removed and
        :class:`~anyotp.StartError` is raised (the caller is not killed).

        Raises:
            NotInProcess: called outside a process (there is nothing to link to).
        """
        tg, owner = task_group_target(cls.__name__, task_group)
        return await spawn(cls(), args, kwargs, tg, owner=owner, link=True, name=name)

    # ------------------------------------------------------- inside the actor

    #: ``self.stop(reason)`` inside the actor; ``Cls.stop(server, reason, timeout)``
    #: from outside (see :class:`StopMethod`).
    stop: StopMethod

    @property
    def children(self) -> ChildTasks:
        """The actor's own task group: tasks and processes started in it are
        cancelled (stopped) and waited for when the actor exits, for any reason."""
        pcb = self._otp_pcb
        if pcb is None:
            raise RuntimeError(f"{type(self).__name__}.children: the actor is not started")
        return child_tasks(pcb)

    def start_soon_child(self, fn: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` (sync or async) as a task in :attr:`children`."""
        self.children.start_soon(fn, *args, name=name)

    async def spawn_child_actor(
        self,
        actor_cls: type[Actor],
        *args: Any,
        on_exit: Callable[[PID, Any], Any] | None = None,
        shutdown: Shutdown = 5.0,
        **kwargs: Any,
    ) -> ActorHandle:
        """Start ``actor_cls(*args, **kwargs)`` as a child owned by this actor.

        The child is not linked: its crash does not crash this actor.  It is stopped
        (reason ``"shutdown"``, killed after ``shutdown`` seconds) when this actor exits.

        Args:
            actor_cls: the Actor subclass to start; ``*args``/``**kwargs`` go to its init.
            on_exit: called as ``on_exit(pid, reason)`` (sync or async) when the child
                exits: in a child task of this actor while it runs; and when the child
                is stopped because this actor exits, during that exit, after the
                child died and before this actor's ``terminate`` (a sync callback is
                called, an async one awaited; not when this actor is killed).
            shutdown: seconds the child gets to stop, ``"brutal_kill"``, or None.

        Returns:
            An :class:`ActorHandle`.
        """
        if not (isinstance(actor_cls, type) and issubclass(actor_cls, Actor)):
            raise TypeError(f"spawn_child_actor() takes an Actor subclass, got {actor_cls!r}")
        me = self._otp_started("spawn_child_actor()")
        child = actor_cls()
        await spawn(child, args, kwargs, me.tg, owner=me, shutdown=shutdown)
        pcb = child._otp_pcb
        assert pcb is not None
        if on_exit is not None:
            add_exit_hook(pcb, _OnExit(me, on_exit))
        return ActorHandle(pcb)


class _OnExit:
    __slots__ = ("callback", "owner")

    def __init__(self, owner: Proc, callback: Callable[[PID, Any], Any]) -> None:
        self.owner = owner
        self.callback = callback

    def down(self, pid: PID, reason: Any) -> None:
        owner = self.owner
        if owner.on_loop(self.down, pid, reason):
            return
        status = owner.status
        if status is RUNNING or status is STARTING:
            child_tasks(owner).start_soon(self.callback, pid, reason)
        elif status is EXITING:
            # The owner is stopping its children: run the callback during its
            # shutdown, after the children died and before its terminate.
            body = owner.body
            pending = body._otp_exit_callbacks
            if pending is None:
                pending = body._otp_exit_callbacks = []
            pending.append((self.callback, pid, reason))


# ------------------------------------------------------------------------ stop


class _StopInside(Protocol):
    def __call__(self, reason: Any = "normal") -> None: ...


class _StopOutside(Protocol):
    def __call__(
        self, server: Target | Actor, reason: Any = "normal", timeout: float | None = None
    ) -> Any: ...


def _stop_self(actor: Actor, reason: Any = "normal") -> None:
    """Exit this actor with ``reason`` (default ``"normal"``).

    From the actor's own task (``run``, a handler, a child task) it raises an
    internal exception that unwinds to the runtime, so code after it does not run.
    From anywhere else it asks the actor to exit and returns at once.
    """
    proc = actor._otp_started("stop()")
    if current_process() is proc:
        raise ProcessExit(reason)
    proc.force_exit(reason)


def stop_server(
    server: Target | Actor, reason: Any = "normal", timeout: float | None = None
) -> Any:
    """Stop ``server`` with ``reason`` and wait until it is dead: ``await Cls.stop(pid)``.

    Like ``gen_server:stop/3`` (``GenServer.stop/3``): the server exits with
    ``reason`` whatever it traps, its owned children are stopped and its
    ``terminate(reason, state)`` runs, then this returns.  Links between the caller
    and the server are removed first, so stopping a linked server does not hit the
    caller.  If the server does not die within ``timeout`` it keeps stopping and
    :class:`~anyotp.CallTimeout` is raised (OTP exits the caller with ``timeout``).

    For a PID of another node the reason travels as an exit signal
    (``exit_process`` + a monitor), so a ``"normal"`` stop of a remote process that
    does not trap exits is ignored, as Erlang's ``exit/2`` would be: use
    ``"shutdown"`` there.

    Given an actor *object* instead (the unbound form ``Actor.stop(self, reason)``),
    it is the instance method: exit that actor from inside, or ask it to exit.

    Args:
        server: PID, registered name or via-name (or an actor object, see above).
        reason: the exit reason, ``"normal"`` by default.
        timeout: seconds to wait for it to die; None (the default) waits forever.

    Returns:
        An awaitable of the reason the server exited with (the requested one, or
        ``"killed"``/another one if something else ended it first).

    Raises:
        CallNoProc: ``server`` is not alive (a ``NoProcess``, a ``LookupError``).
        CallTimeout: it did not die within ``timeout`` seconds.
        CallError: ``server`` is the calling process (reason ``"calling_self"``:
            use ``self.stop(reason)`` inside a process).
        NotInProcess: a remote ``server`` and no calling process to monitor it.
    """
    if isinstance(server, Actor):
        _stop_self(server, reason)
        return None
    return _stop_and_wait(server, reason, timeout)


async def _stop_and_wait(server: Target, reason: Any, timeout: float | None) -> Any:
    request = ("stop", reason)
    what = f"stop({server!r}, {reason!r}, timeout={timeout})"
    timeout = check_timeout(timeout, what)  # before anything is sent

    def noproc() -> CallNoProc:
        return CallNoProc(noproc_message(what, server), server, request, timeout, "noproc")

    def timed_out() -> CallTimeout:
        return CallTimeout(
            f"{what} timed out: the server did not exit within {timeout} s (it was asked "
            "to and keeps stopping; exit_process(pid, 'kill') kills it)",
            server,
            request,
            timeout,
            "timeout",
        )

    try:
        dest = route(server, "stop()")
    except NoProcess:
        raise noproc() from None
    if dest is None:
        raise noproc()
    if type(dest) is Proc:
        if dest is current_process():
            raise CallError(
                f"{what}: a process cannot stop itself and wait for it; use "
                "self.stop(reason) (or exit_process(self_pid(), reason)) inside it",
                server,
                request,
                timeout,
                "calling_self",
            )
        with anyio.move_on_after(timeout) as scope:
            return await stop(dest, reason, None)
        if scope.cancelled_caught:
            raise timed_out()
        return dest.exit_reason  # pragma: no cover - the scope only ends by its deadline
    # A PID of another node: an exit signal and a monitor (the transport carries both).
    me = require_current(f"{what} of a remote process")
    pid = lookup(server, "stop()")
    ref = monitor(pid)
    exit_process(pid, reason)

    def down(m: Any) -> tuple[Any] | None:
        if type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref:
            return (m[4],)
        return None

    try:
        _, (why,) = await me.mbox.receive((down,), timeout)
    except ReceiveTimeout:
        demonitor(ref, flush=True)
        raise timed_out() from None
    if type(why) is str and why == "noproc":
        raise noproc()
    return why


class StopMethod:
    """``stop``: the instance method inside an actor, ``gen_server:stop`` on the class.

    * ``self.stop(reason="normal")`` (an instance): exit this actor with ``reason``;
      from its own task it does not return.
    * ``await MyServer.stop(server, reason="normal", timeout=None)`` (the class, any
      Actor subclass: ``GenServer.stop``, ``Agent.stop``, ``Supervisor.stop``): stop
      a running process from outside and wait until it is dead; see
      :func:`stop_server`.
    """

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _StopOutside: ...

    @overload
    def __get__(self, instance: Actor, owner: type[Any]) -> _StopInside: ...

    def __get__(self, instance: Actor | None, owner: type[Any]) -> Any:
        if instance is None:
            return stop_server
        return MethodType(_stop_self, instance)


Actor.stop = StopMethod()
