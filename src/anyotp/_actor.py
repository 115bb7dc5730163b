"""Actors: the base behaviour, a process whose body you write as ``run(state)``.

An :class:`Actor` subclass implements ``init(*args, **kwargs) -> state`` and
``run(state) -> state``; the runtime calls ``run`` in a loop, and ``run`` normally
awaits ``self.receive(...)`` with ``(pattern, handler)`` pairs::

    class Echo(Actor):
        async def run(self, state):
            return await self.receive(
                (("ping", PID), lambda sender: send(sender, "pong") and state),
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

from collections.abc import Callable
from types import CoroutineType
from typing import Any, TypeVar

from ._core._backend import current_loop
from ._core._ids import PID
from ._core._pattern import compile_patterns
from ._core._process import (
    RUNNING,
    ChildTasks,
    Process,
    Shutdown,
    Waiter,
    _current,
    _Exit,
    _maybe_await,
    start_process,
)
from ._exceptions import InvalidPattern, NotInProcess

__all__ = ["Actor", "ActorHandle"]

A = TypeVar("A", bound="Actor")


class ActorHandle:
    """Handle to a running actor, returned by :meth:`Actor.spawn_child_actor`.

    Attributes:
        pid: the actor's PID.
    """

    __slots__ = ("_proc", "pid")

    def __init__(self, proc: Process) -> None:
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
        return await _stop_and_wait(self._proc, reason, timeout)

    async def wait(self) -> Any:
        """Wait until the actor exits; returns its exit reason."""
        return await self._proc._wait_dead()

    def __repr__(self) -> str:
        return f"<ActorHandle {self.pid!r}>"


async def _stop_and_wait(proc: Process, reason: Any, timeout: float | None) -> Any:
    loop = current_loop()
    if loop is None:
        raise NotInProcess("stopping a process needs a running event loop")
    from ._core._process import DEAD, TIMEOUT, _DeathWatch

    if proc._status is DEAD:
        return proc.exit_reason
    w = loop.new_waiter()
    watch = _DeathWatch(w)
    proc._monitors[watch] = watch
    try:
        if proc._status is DEAD:
            return proc.exit_reason
        proc._force_exit(reason)
        got = await w.wait(timeout)
        if got is TIMEOUT:
            # a timed-out waiter is spent (asyncio): wait for the kill on a fresh one
            w = watch.waiter = loop.new_waiter()
            if proc._status is DEAD:
                return proc.exit_reason
            proc._signal_exit(None, "kill")
            got = await w.wait(None)
        return got
    finally:
        proc._monitors.pop(watch, None)


def _task_group_target(cls_name: str, task_group: Any) -> tuple[Any, Process | None]:
    """Resolve ``task_group=``: an anyio TaskGroup, or ``self.children`` (owned start)."""
    if task_group is None:
        raise TypeError(
            f"{cls_name}.start() needs task_group=: pass an anyio task group "
            "(`async with anyio.create_task_group() as tg: await "
            f"{cls_name}.start(task_group=tg)`), or `self.children` inside an actor"
        )
    if isinstance(task_group, ChildTasks):
        owner = task_group._owner
        if owner._status is not RUNNING and owner._status != 0:
            raise RuntimeError(f"{owner!r} is exiting: it cannot start children")
        return owner._tg, owner
    if not hasattr(task_group, "start_soon"):
        raise TypeError(
            f"{cls_name}.start(task_group=...) takes an anyio TaskGroup, got "
            f"{type(task_group).__name__} {task_group!r}"
        )
    return task_group, None


class Actor(Process):
    """Base actor: subclass it and implement :meth:`run` (and usually :meth:`init`).

    Lifecycle: ``init(*args, **kwargs)`` -> ``run(state)`` in a loop ->
    ``terminate(reason, state)``.  ``terminate`` runs on every exit except a kill,
    including cancellation of the surrounding task group.
    """

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

    _no_terminate: bool = False

    async def _boot(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> Any:
        try:
            state = self._check_init(await _maybe_await(self.init(*args, **kwargs)))
        except BaseException:
            self._no_terminate = True  # OTP: a failed init does not call terminate
            raise
        self._state = state
        self._status = RUNNING
        ack.set(None)
        return state

    def _check_init(self, result: Any) -> Any:
        """Validate what ``init`` returned, before ``start`` returns (a subclass hook)."""
        return result

    async def _serve(self, state: Any) -> None:
        run = self.run
        while True:
            state = await run(state)
            self._state = state

    async def _cleanup(self, reason: Any) -> Any:
        if self._no_terminate:
            return reason
        try:
            await _maybe_await(self.terminate(reason, self._state))
        except _Exit as e:  # stop(r) in terminate: exit with r (Erlang: exit/1 there)
            return e.reason
        except Exception as e:
            from ._core._process import log

            log.error("%r: terminate(%r, ...) raised %r", self, reason, e, exc_info=e)
        return reason

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
        if self._pid is None:
            raise RuntimeError(f"{type(self).__name__}.receive(): the actor was never started")
        for p in patterns:
            if type(p) is not tuple or len(p) != 2 or not callable(p[1]):
                raise InvalidPattern(
                    f"receive() takes (pattern, handler) pairs, got {p!r}: wrap it as "
                    "(pattern, handler), e.g. (('data', ANY), lambda x: x)"
                )
        if not patterns:
            raise InvalidPattern("receive() needs at least one (pattern, handler) pair")
        key = compile_patterns(tuple([p[0] for p in patterns]))
        index, extracted = await self._mbox.receive(key, timeout)
        result = patterns[index][1](*extracted)
        # Await only what needs it, found by a type lookup rather than
        # inspect.isawaitable (an ABC check): bench ping_pong.
        if type(result) is CoroutineType or getattr(type(result), "__await__", None) is not None:
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
        tg, owner = _task_group_target(cls.__name__, task_group)
        proc = cls()
        return await start_process(proc, args, kwargs, tg, owner=owner, name=name)

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
        tg, owner = _task_group_target(cls.__name__, task_group)
        proc = cls()
        return await start_process(proc, args, kwargs, tg, owner=owner, link=True, name=name)

    # ------------------------------------------------------- inside the actor

    def stop(self, reason: Any = "normal") -> None:
        """Exit this actor with ``reason`` (default ``"normal"``).

        From the actor's own task (``run``, a handler, a child task) it raises an
        internal exception that unwinds to the runtime, so code after it does not run.
        From anywhere else it asks the actor to exit and returns at once.
        """
        if _current.get() is self:
            raise _Exit(reason)
        if self._pid is None:
            raise RuntimeError(f"{type(self).__name__}.stop(): the actor was never started")
        self._force_exit(reason)

    @property
    def children(self) -> ChildTasks:
        """The actor's own task group: tasks and processes started in it are
        cancelled (stopped) and waited for when the actor exits, for any reason."""
        c = self._child_tasks
        if c is None:
            if self._pid is None:
                raise RuntimeError(f"{type(self).__name__}.children: the actor is not started")
            c = self._child_tasks = ChildTasks(self)
        return c

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
            on_exit: called as ``on_exit(pid, reason)`` (sync or async, in a child task
                of this actor) when the child exits while this actor is running.
            shutdown: seconds the child gets to stop, ``"brutal_kill"``, or None.

        Returns:
            An :class:`ActorHandle`.
        """
        if not (isinstance(actor_cls, type) and issubclass(actor_cls, Actor)):
            raise TypeError(f"spawn_child_actor() takes an Actor subclass, got {actor_cls!r}")
        child = actor_cls()
        await start_process(child, args, kwargs, self._tg, owner=self, shutdown=shutdown)
        if on_exit is not None:
            watch = _OnExit(self, on_exit)
            child._monitors[watch] = watch
            if child._status == 3:
                child._monitors.pop(watch, None)
                watch.down(child.pid, child.exit_reason)
        return ActorHandle(child)


class _OnExit:
    __slots__ = ("callback", "owner")

    def __init__(self, owner: Actor, callback: Callable[[PID, Any], Any]) -> None:
        self.owner = owner
        self.callback = callback

    def down(self, pid: PID, reason: Any) -> None:
        owner = self.owner
        if owner._on_loop(self.down, pid, reason):
            return
        if owner._status is RUNNING:
            owner.children.start_soon(self.callback, pid, reason)
