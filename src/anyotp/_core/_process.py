"""Processes: identity, lifecycle, exit signals, links, monitors, ownership.

This is the runtime every behaviour stands on.  A :class:`Process` is an object with
a PID, a mailbox and a lifecycle (starting -> running -> exiting -> dead) whose body
runs as one task of an anyio task group.  Processes talk only by messages (``send``,
``cast``, ``call``) and learn of each other's death through links (exit signals) and
monitors (``DOWN`` messages), with Erlang's rules:

* a process exits with a *reason*: ``"normal"``, ``"shutdown"``, ``"killed"``, or the
  exception that crashed it (logged once, with its traceback, by the crashing process);
* an exit signal other than ``"normal"`` kills a linked process, unless it traps exits
  (``trap_exit = True``), in which case it gets ``("EXIT", pid, reason)`` instead;
  ``"kill"`` cannot be trapped and spreads as ``"killed"``;
* a monitor delivers ``("DOWN", ref, "process", pid, reason)`` once; monitoring a dead
  process delivers it at once with reason ``"noproc"``.

Ownership is anyotp's structured-concurrency rule: a process started *by* a process
(supervisor children, ``spawn_child_actor``, tasks) is owned by it, shielded from
outside cancellation, and stopped by its owner -- in reverse start order, each given
its shutdown timeout -- before the owner's ``terminate`` runs.  So cancelling the task
group of a supervision tree shuts it down top-down, in order, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import logging
import threading
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import anyio

from .. import _telemetry
from .._exceptions import (
    CallError,
    CallExit,
    CallNoProc,
    CallTimeout,
    NoProcess,
    NotInProcess,
    StartError,
)
from ._backend import TIMEOUT, Loop, Waiter, _AioWaiter, current_loop
from ._ids import PID, Ref
from ._mailbox import Mailbox
from ._names import _names, _release, register, resolve_via

__all__ = [
    "CALL_TAG",
    "CAST_TAG",
    "SYSTEM_TAG",
    "TIMEOUT",
    "ChildTasks",
    "From",
    "Process",
    "Shutdown",
    "Status",
    "Waiter",
    "call",
    "cast",
    "current_process",
    "demonitor",
    "exit_process",
    "is_alive",
    "link",
    "monitor",
    "processes",
    "resolve",
    "self_pid",
    "send",
    "unlink",
]

log = logging.getLogger("anyotp")

_get_ident = threading.get_ident

#: Head of a call message: ``("$gen_call", from_, request)``, like OTP's ``$gen_call``.
CALL_TAG: Final = "$gen_call"
#: Head of a cast message: ``("$gen_cast", request)``, like OTP's ``$gen_cast``.
CAST_TAG: Final = "$gen_cast"
#: Head of a system message: ``("$system", from_, request)``, like OTP's ``system``.
SYSTEM_TAG: Final = "$system"

#: How a supervisor (or any owner) stops a child: seconds to wait after asking it to
#: exit with ``"shutdown"`` before killing it, ``"brutal_kill"`` to kill at once, or
#: ``None`` to wait forever (the default for supervisors, as in OTP).
Shutdown = float | Literal["brutal_kill"] | None


class Status(enum.IntEnum):
    """Lifecycle of a process."""

    STARTING = 0  #: spawned; ``init`` has not returned yet
    RUNNING = 1  #: ``init`` returned; handling messages
    EXITING = 2  #: stopping its children and running ``terminate``
    DEAD = 3  #: gone: links and monitors have been told


STARTING, RUNNING, EXITING, DEAD = Status.STARTING, Status.RUNNING, Status.EXITING, Status.DEAD

_NO_SHIELD: Final = contextlib.nullcontext()

#: live local processes by PID number
_table: dict[int, Process] = {}
_current: contextvars.ContextVar[Process | None] = contextvars.ContextVar(
    "anyotp_current_process", default=None
)


class _Exit(BaseException):
    """Raised inside a process to make it exit with ``reason`` (``Actor.stop``)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class _Down:
    """What a call waiter receives when the server exits before replying."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


class _InitFailed:
    __slots__ = ("exc", "reason")

    def __init__(self, reason: Any, exc: BaseException | None) -> None:
        self.reason = reason
        self.exc = exc


class _MonitorLike(Protocol):
    def down(self, pid: PID, reason: Any) -> None: ...


class _Monitor:
    """A monitor held by a process: on death, a DOWN message to the watcher."""

    __slots__ = ("ref", "watcher")

    def __init__(self, ref: Ref, watcher: Process) -> None:
        self.ref = ref
        self.watcher = watcher

    def down(self, pid: PID, reason: Any) -> None:
        w = self.watcher
        if w._monitoring.pop(self.ref, None) is not None:
            w._mbox.put(("DOWN", self.ref, "process", pid, reason))


class _DeathWatch:
    """A monitor that fills a waiter with the exit reason (used to wait for exits)."""

    __slots__ = ("waiter",)

    def __init__(self, waiter: Waiter) -> None:
        self.waiter = waiter

    def down(self, pid: PID, reason: Any) -> None:
        self.waiter.set(reason)


class From:
    """Who is waiting for a reply: the ``from_`` argument of ``handle_call``.

    Pass it to :func:`~anyotp.reply` (or return ``(reply, state)``) to answer.  It is
    also the caller's monitor of the server for the duration of the call, so the
    caller learns at once if the server dies.  Replying twice, or after the caller
    gave up (timeout), is silently ignored: a late reply never reaches a mailbox.

    Attributes:
        pid: the calling process, or None when the caller is not a process.
    """

    __slots__ = ("_waiter", "pid")

    def __init__(self, pid: PID | None, waiter: Waiter) -> None:
        self.pid = pid
        self._waiter = waiter

    def reply(self, value: Any) -> None:
        """Send ``value`` to the caller (any thread); like ``gen_server:reply/2``."""
        self._waiter.set(value)

    def down(self, pid: PID, reason: Any) -> None:
        """Runtime hook: the server exited before replying; the call fails at once."""
        self._waiter.set(_Down(reason))

    def __repr__(self) -> str:
        return f"<From {self.pid!r}>"


class Process:
    """Base class of everything with a PID: actors, servers, supervisors, tasks.

    Subclasses implement :meth:`_boot` and :meth:`_serve` (``Actor`` runs ``init``,
    then ``run`` in a loop).
    The attributes below are the runtime's; a subclass must not assign them.

    Attributes:
        trap_exit: when True, exit signals from linked processes arrive as
            ``("EXIT", pid, reason)`` messages instead of killing this process (except
            ``"kill"``).  Set it as a class attribute or in ``init``; like
            ``process_flag(trap_exit, true)``.
    """

    trap_exit: bool = False

    # Runtime fields (set by _setup, not __init__, so subclasses need not call super).
    _pid: PID | None = None
    _status: Status = STARTING
    _mbox: Mailbox
    _loop: Loop
    # links as a dict used as a set: an empty dict is 64 bytes and untracked by the GC,
    # an empty set 216 bytes and tracked (bench: spawn, million)
    _links: dict[PID, None]
    _monitors: dict[Any, _MonitorLike]
    _monitoring: dict[Ref, PID]
    _name: str | None = None
    _parent: PID | None = None
    _owner: Process | None = None
    _owned: dict[Process, Shutdown]
    _tasks: set[anyio.CancelScope] | None = None
    _tasks_waiter: Waiter | None = None
    _child_tasks: ChildTasks | None = None
    _tg: Any = None
    #: the task running the process body (asyncio.Task / trio Task), for introspection
    _task: Any = None
    _scope: anyio.CancelScope | None = None
    _cleanup_scope: anyio.CancelScope | None = None
    _exit_reason: Any = None
    _state: Any = None
    #: final exit reason once dead
    exit_reason: Any = None

    def _setup(self, loop: Loop) -> None:
        self._pid = pid = PID._new(self)
        self._status = STARTING
        self._mbox = Mailbox(loop.new_waiter)
        self._loop = loop
        self._links = {}
        self._monitors = {}
        self._monitoring = {}
        self._owned = {}
        _table[pid.id] = self

    @property
    def pid(self) -> PID:
        """This process's PID.

        Raises:
            RuntimeError: the process was never started.
        """
        pid = self._pid
        if pid is None:
            raise RuntimeError(
                f"{type(self).__name__} has no PID: it was never started "
                f"(use `await {type(self).__name__}.start(task_group=tg)`)"
            )
        return pid

    # ------------------------------------------------------------ the body (subclass)

    async def _boot(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> Any:
        """Initialise; call ``ack.set(None)`` once done and return the initial state."""
        raise NotImplementedError

    async def _serve(self, state: Any) -> None:
        """The process's main loop; it exits by returning (reason ``"normal"``),
        raising ``_Exit`` or crashing.  (Awaited by ``_main`` directly, not from
        ``_boot``: every coroutine level is walked on each suspend and resume.)"""

    async def _cleanup(self, reason: Any) -> Any:
        """Hook run (shielded) after owned children stopped; returns the final reason."""
        return reason

    # ------------------------------------------------------------------ main loop

    async def _main(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> None:
        # Owned processes are shielded from outside cancellation: their owner stops
        # them, in order.  The shield is entered before the first checkpoint.
        # (An unowned process enters a shared no-op context instead of a scope: an anyio
        # CancelScope costs ~1 KB per process; bench: spawn, million.)
        with anyio.CancelScope(shield=True) if self._owner is not None else _NO_SHIELD:
            token = _current.set(self)
            get_task = self._loop.current_task
            self._task = get_task() if get_task is not None else None
            reason: Any = "normal"
            outer_cancel: BaseException | None = None
            crashed = False
            scope = anyio.CancelScope()
            self._scope = scope
            cancelled_exc = self._loop.cancelled_exc
            try:
                with scope:
                    if self._exit_reason is not None:
                        scope.cancel()
                    state = await self._boot(args, kwargs, ack)
                    # Started: drop what only the start needed, so a long-lived idle
                    # process does not keep it (fewer objects for the GC to walk).
                    args = kwargs = ack = None  # type: ignore[assignment]
                    await self._serve(state)
            except _Exit as e:
                reason = e.reason
            except cancelled_exc as e:
                reason = "shutdown"
                outer_cancel = e
            except Exception as e:
                reason = e
                crashed = True
            except BaseException as e:  # KeyboardInterrupt, SystemExit: die, then re-raise
                reason = e
                outer_cancel = e
            if self._exit_reason is not None and outer_cancel is None:
                reason = self._exit_reason
                crashed = False
            init_failed: _InitFailed | None = None
            if self._status is STARTING:
                # init failed: the starter gets a StartError and logs nothing twice
                self._unlink_all_quietly()
                init_failed = _InitFailed(
                    reason, reason if isinstance(reason, BaseException) else None
                )
                crashed = False
            if crashed:
                log.error(
                    "process %r (%s) crashed: %r",
                    self._pid,
                    type(self).__name__,
                    reason,
                    exc_info=reason,
                )
                if _telemetry.enabled:
                    _telemetry.emit_process_crash(self, reason)
            self._status = EXITING
            with anyio.CancelScope(shield=True) as cleanup:
                self._cleanup_scope = cleanup
                await self._stop_owned()
                if not (type(reason) is str and reason == "killed"):
                    reason = await self._cleanup(reason)
            if cleanup.cancel_called:  # killed while stopping children or in terminate
                reason = "killed"
            try:
                self._die(reason)
            except BaseException as e:  # a subclass hook failed: still finish dying
                log.error("%r: _die(%r) raised %r", self, reason, e, exc_info=e)
                if self._status is not DEAD:
                    Process._die(self, reason)
            if _telemetry.enabled:
                _telemetry.emit_process_exit(self, reason)
            if init_failed is not None and ack is not None:
                # Only now: when start() raises, the children init started are stopped
                # and the name is free again (OTP's start_link returns after cleanup).
                ack.set(init_failed)
            _current.reset(token)
            if outer_cancel is not None:
                raise outer_cancel

    def _unlink_all_quietly(self) -> None:
        me = self._pid
        assert me is not None
        for pid in self._links:
            p = pid._proc
            if p is not None:
                p._links.pop(me, None)
        self._links.clear()

    async def _stop_owned(self) -> None:
        """Cancel child tasks and wait for them; then stop owned processes, newest
        first, each within its shutdown timeout."""
        tasks = self._tasks
        if tasks:
            w = self._loop.new_waiter()
            self._tasks_waiter = w
            for scope in list(tasks):
                scope.cancel()
            if tasks:
                await w.wait(None)
        while self._owned:
            child, shutdown = self._owned.popitem()
            await self._shutdown(child, shutdown)

    async def _shutdown(self, child: Process, shutdown: Shutdown) -> Any:
        """Stop ``child`` (reason ``"shutdown"``; killed after ``shutdown`` seconds) and
        wait until it is dead.  Returns its exit reason.  Like ``supervisor``'s
        shutdown of a child: unlink, exit(shutdown), wait, exit(kill)."""
        me = self._pid
        assert me is not None
        if child._status is DEAD:
            return child.exit_reason
        child._links.pop(me, None)
        self._links.pop(child.pid, None)
        w = self._loop.new_waiter()
        watch = _DeathWatch(w)
        child._monitors[watch] = watch
        if child._status is DEAD:
            child._monitors.pop(watch, None)
            return child.exit_reason
        try:
            if shutdown == "brutal_kill":
                child._signal_exit(me, "kill")
                return await w.wait(None)
            child._force_exit("shutdown")
            timeout = None if shutdown is None else float(shutdown)
            got = await w.wait(timeout)
            if got is TIMEOUT:
                log.warning(
                    "%r (%s) did not stop within %s s of shutdown; killing it",
                    child._pid,
                    type(child).__name__,
                    timeout,
                )
                # A waiter that timed out is spent (on asyncio it keeps TIMEOUT): wait
                # on a fresh one, or the kill would not be waited for.
                w = watch.waiter = self._loop.new_waiter()
                if child._status is DEAD:
                    return child.exit_reason
                child._signal_exit(me, "kill")
                got = await w.wait(None)
            return got
        finally:
            child._monitors.pop(watch, None)

    def _die(self, reason: Any) -> None:
        """Final bookkeeping: unregister, notify links and monitors.  Any thread."""
        pid = self._pid
        assert pid is not None
        self._status = DEAD
        self.exit_reason = reason
        _table.pop(pid.id, None)
        pid._proc = None
        if self._name is not None:
            _release(self)
        owner = self._owner
        if owner is not None:
            owner._owned.pop(self, None)
        # Owned children still alive here (the owner was killed mid-shutdown) are told
        # to stop without waiting: nothing is left behind.
        for child in list(self._owned):
            child._force_exit("shutdown")
        self._owned.clear()
        if self._tasks:
            for scope in list(self._tasks):
                scope.cancel()
        links = self._links
        self._links = {}
        for other in links:
            p = other._proc
            if p is not None:
                p._links.pop(pid, None)
                p._signal_exit(pid, reason, linked=True)
        monitors = self._monitors
        self._monitors = {}
        for m in list(monitors.values()):
            m.down(pid, reason)
        for ref, target in self._monitoring.items():
            p = target._proc
            if p is not None:
                p._monitors.pop(ref, None)
        self._monitoring.clear()
        self._mbox.clear()

    # --------------------------------------------------------------- exit signals

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on this process's loop thread; True if it was deferred."""
        if _get_ident() != self._loop.tid:
            self._loop.run_soon_threadsafe(fn, *args)
            return True
        return False

    def _signal_exit(self, sender: PID | None, reason: Any, linked: bool = False) -> None:
        """Deliver an exit signal, like ``exit(Pid, Reason)`` or a dying link."""
        if self._status is DEAD:
            return
        if _get_ident() != self._loop.tid:
            self._loop.run_soon_threadsafe(self._signal_exit, sender, reason, linked)
            return
        is_str = type(reason) is str
        if is_str and reason == "kill" and not linked:
            self._force_exit("killed")
        elif self.trap_exit:
            self._mbox.put(("EXIT", sender, reason))
        elif is_str and reason == "normal":
            if sender is not None and sender == self._pid:
                self._force_exit("normal")
        else:
            self._force_exit(reason)

    def _force_exit(self, reason: Any) -> None:
        """Make this process exit with ``reason`` now, whatever it traps.  Any thread."""
        if _get_ident() != self._loop.tid:
            self._loop.run_soon_threadsafe(self._force_exit, reason)
            return
        status = self._status
        if status is DEAD:
            return
        if status is EXITING:
            # Already stopping; only a kill interrupts terminate/children shutdown.
            if type(reason) is str and reason == "killed":
                cleanup = self._cleanup_scope
                if cleanup is not None:
                    self._exit_reason = reason
                    cleanup.cancel()
            return
        if self._exit_reason is None:
            self._exit_reason = reason
        scope = self._scope
        if scope is not None:
            scope.cancel()
        self._cancel_pending()

    def _cancel_pending(self) -> None:
        """Hook: a subclass whose body does not run in ``_scope`` (threads) wakes it."""

    async def _wait_dead(self) -> Any:
        """Wait until this process is dead; returns its exit reason."""
        if self._status is DEAD:
            return self.exit_reason
        loop = current_loop()
        if loop is None:
            raise NotInProcess("waiting for a process to exit needs a running event loop")
        w = loop.new_waiter()
        watch = _DeathWatch(w)
        self._monitors[watch] = watch
        if self._status is DEAD:
            self._monitors.pop(watch, None)
            return self.exit_reason
        try:
            return await w.wait(None)
        finally:
            self._monitors.pop(watch, None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._pid!r} {self._status.name.lower()}>"


# ------------------------------------------------------------------------- spawning


async def start_process(
    proc: Process,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    task_group: Any,
    *,
    link: bool = False,
    owner: Process | None = None,
    shutdown: Shutdown = 5.0,
    name: Any = None,
) -> PID:
    """Spawn ``proc`` into ``task_group`` and wait for its ``init`` to return.

    ``owner`` makes it an owned child (shielded, stopped by the owner); ``link`` links
    it to the calling process.

    Raises:
        StartError: ``init`` raised (chained) or the process exited before running.
    """
    loop = owner._loop if owner is not None else current_loop()
    if loop is None:
        raise NotInProcess("starting a process needs a running event loop (anyio.run(...))")
    if proc._pid is not None:
        raise RuntimeError(f"{proc!r} was already started; start a new instance instead")
    parent = _current.get()
    if link and parent is None:  # checked before _setup: a refused start leaves nothing
        raise NotInProcess("start_link() links to the calling process: call it from one")
    proc._setup(loop)
    proc._tg = task_group
    if parent is not None:
        proc._parent = parent._pid
    if owner is not None:
        proc._owner = owner
        owner._owned[proc] = shutdown
    if link and parent is not None:
        parent._links[proc.pid] = None
        proc._links[parent.pid] = None
    if name is not None:
        try:
            via = resolve_via(name)
            if via is not None:
                registered = via[0].register_name(via[1], proc.pid)
                holder_pid = None if registered else via[0].whereis_name(via[1])
            else:
                registered = register(name, proc.pid)
                holder_proc = _names.get(name)
                holder_pid = None if registered or holder_proc is None else holder_proc.pid
        except BaseException:  # a bad name or registry: leave no half-started process
            registered = False
            raise
        finally:
            if not registered:
                proc._status = DEAD
                _table.pop(proc.pid.id, None)
                if owner is not None:
                    owner._owned.pop(proc, None)
                if parent is not None:
                    parent._links.pop(proc.pid, None)
        if not registered:
            raise StartError(
                f"cannot start {type(proc).__name__} as {name!r}: the name is already "
                f"registered to {holder_pid!r} (stop that process, or pick another name)",
                ("already_started", holder_pid),
            )
    ack = loop.new_waiter()
    try:
        task_group.start_soon(proc._main, args, kwargs, ack, name=f"{type(proc).__name__}")
    except BaseException:
        proc._die("noproc")
        raise
    got = await ack.wait(None)
    if type(got) is _InitFailed:
        message = f"{type(proc).__name__} failed to start: init exited with {got.reason!r}"
        raise StartError(message, got.reason) from got.exc
    if _telemetry.enabled:
        _telemetry.emit_process_spawn(proc)
    return proc.pid


# --------------------------------------------------------------------- messaging


def current_process() -> Process | None:
    """The process running the current task, or None outside any process."""
    return _current.get()


def self_pid() -> PID:
    """The PID of the calling process; like ``erlang:self/0``.

    Raises:
        NotInProcess: called outside any process.
    """
    proc = _current.get()
    if proc is None:
        raise NotInProcess("self_pid() was called outside any process")
    return proc.pid


def resolve(target: Any) -> Process | None:
    """The live local process named by ``target``: a PID, a registered name, or a
    via-name (``Via(registry, key)`` / ``("via", registry, key)``); None if none."""
    if type(target) is PID:
        return target._proc
    if type(target) is str:
        return _names.get(target)
    via = resolve_via(target)
    if via is not None:
        pid = via[0].whereis_name(via[1])
        return None if pid is None else pid._proc
    raise TypeError(
        'expected a PID, a registered name (str) or a via-name ("via", registry, key), '
        f"got {type(target).__name__} {target!r}"
    )


def _noproc_message(what: str, target: Any) -> str:
    if type(target) is str:
        return (
            f"{what} to {target!r} failed: no process is registered under that name "
            f"(registered names: {sorted(_names)[:10]})"
        )
    return f"{what} to {target!r} failed: that process is not alive (it exited, or never existed)"


class _Sent:
    """The already-completed awaitable that ``send`` and ``cast`` return."""

    __slots__ = ()

    # `await send(...)` calls __await__ on every message: a C-level callable returning
    # one shared, exhausted iterator avoids a Python frame (bench: cast_throughput).
    if TYPE_CHECKING:

        def __await__(self) -> Generator[Any, Any, None]: ...

    else:
        __await__ = staticmethod(iter(()).__iter__)


_SENT: Final = _Sent()


def send(target: PID | str, message: Any) -> Awaitable[None]:
    """Send ``message`` to a process's mailbox; like Erlang's ``!``.

    Delivery happens before ``send`` returns, so it works from any thread, awaited
    (``await send(pid, msg)``, as in the seeds) or not.  Messages from one sender to
    one receiver arrive in the order sent.

    Args:
        target: a PID or a registered name.
        message: any object; it is not copied.

    Raises:
        NoProcess: the target is dead or the name is not registered.  (Erlang drops
            such a message silently; anyotp tells you.  A successful send still does
            not mean the message will be handled: the process may die first.)
    """
    proc = target._proc if type(target) is PID else resolve(target)
    if proc is None:
        raise NoProcess(_noproc_message("send()", target), target)
    # Mailbox.put, inlined (bench: cast_throughput, ping_pong): append, then wake.
    mbox = proc._mbox
    mbox._q.append(message)
    w = mbox._waiter
    if w is not None:
        w.set(None)
    return _SENT


def cast(target: PID | str, request: Any) -> Awaitable[None]:
    """Send ``request`` to a GenServer without waiting; like ``gen_server:cast/2``.

    The server's ``handle_cast(request, state)`` handles it.  Like :func:`send`, it
    is delivered at once and works from any thread, awaited or not.

    Raises:
        NoProcess: the target is dead or the name is not registered.
    """
    proc = target._proc if type(target) is PID else resolve(target)
    if proc is None:
        raise NoProcess(_noproc_message("cast()", target), target)
    mbox = proc._mbox  # Mailbox.put, inlined as in send()
    mbox._q.append((CAST_TAG, request))
    w = mbox._waiter
    if w is not None:
        w.set(None)
    return _SENT


async def call(target: PID | str, request: Any, timeout: float | None = 5.0) -> Any:
    """Send ``request`` to a GenServer and wait for its reply; like ``gen_server:call/3``.

    The caller monitors the server for the duration of the call: if the server is not
    alive, or exits before replying, the call fails at once rather than at the
    timeout.  A reply that arrives after the timeout is discarded.

    Args:
        target: a PID or a registered name.
        request: passed to the server's ``handle_call(request, from_, state)``.
        timeout: seconds to wait for the reply; ``None`` waits forever.

    Returns:
        The server's reply.

    Raises:
        CallNoProc: the server is dead or the name unknown (a ``LookupError``).
        CallTimeout: no reply within ``timeout`` seconds (a ``TimeoutError``).
        CallExit: the server exited before replying; ``.reason`` says why.
        CallError: a process called itself (``reason="calling_self"``).
    """
    proc = target._proc if type(target) is PID else resolve(target)
    if proc is None:
        raise CallNoProc(
            _noproc_message(f"call(..., {request!r})", target), target, request, timeout, "noproc"
        )
    me = _current.get()
    if me is None:
        loop = current_loop()
        if loop is None:
            raise NotInProcess(
                "call() needs a running event loop; from plain threads use anyotp.sync.call()"
            )
        from_ = From(None, loop.new_waiter())
    else:
        if proc is me:
            raise CallError(
                f"call({target!r}, {request!r}) from the process itself would deadlock: "
                "a process cannot call itself",
                target,
                request,
                timeout,
                "calling_self",
            )
        from_ = From(me._pid, me._loop.new_waiter())
    monitors = proc._monitors
    monitors[from_] = from_
    if proc._status is DEAD:  # died between lookup and monitor
        monitors.pop(from_, None)
        raise CallNoProc(
            _noproc_message(f"call(..., {request!r})", target), target, request, timeout, "noproc"
        )
    t0 = _telemetry.emit_call_start(proc, request) if _telemetry.enabled else 0.0
    proc._mbox.put((CALL_TAG, from_, request))
    w = from_._waiter
    try:
        if timeout is None:
            got = await w
        elif type(w) is _AioWaiter and timeout > 0:
            # Inlined _AioWaiter.wait: one coroutine level fewer to suspend and resume
            # through on every timed call (bench: call_latency, fan_in).
            fut = w._fut
            wheel = w._wheel
            tick = wheel.add(fut, timeout)
            try:
                got = await fut
            finally:
                wheel.remove(fut, tick)
        else:
            got = await w.wait(timeout)
    finally:
        monitors.pop(from_, None)
    if t0:
        _telemetry.emit_call_stop(t0, proc, request, got, type(got) is _Down or got is TIMEOUT)
    if type(got) is _Down:
        raise _call_exit(target, request, timeout, got.reason)
    if got is TIMEOUT:
        raise CallTimeout(
            f"call({target!r}, {request!r}, timeout={timeout}) timed out: no reply in "
            f"{timeout} s (a late reply will be discarded)",
            target,
            request,
            timeout,
            "timeout",
        )
    return got


def _call_exit(target: Any, request: Any, timeout: float | None, reason: Any) -> CallError:
    if type(reason) is str and reason == "noproc":
        return CallNoProc(
            _noproc_message(f"call(..., {request!r})", target), target, request, timeout, "noproc"
        )
    exc = CallExit(
        f"call({target!r}, {request!r}) failed: the server exited with reason {reason!r} "
        "before replying",
        target,
        request,
        timeout,
        reason,
    )
    if isinstance(reason, BaseException):
        exc.__cause__ = reason
    return exc


# ----------------------------------------------------------- links and monitors


def _require_current(what: str) -> Process:
    proc = _current.get()
    if proc is None:
        raise NotInProcess(f"{what} acts on the calling process: call it from inside a process")
    return proc


def link(target: PID | str) -> None:
    """Link the calling process to ``target``; like ``erlang:link/1``.

    When either exits, the other gets an exit signal with the same reason.

    Raises:
        NotInProcess: called outside a process.
        NoProcess: ``target`` is not alive and the caller does not trap exits (a
            trapping caller gets ``("EXIT", target, "noproc")`` instead).
    """
    me = _require_current("link()")
    proc = resolve(target)
    if proc is None or proc._status is DEAD:
        if me.trap_exit:
            me._mbox.put(("EXIT", target, "noproc"))
            return
        raise NoProcess(_noproc_message("link()", target), target)
    if proc is me:
        return
    me._links[proc.pid] = None
    proc._links[me.pid] = None
    if proc._status is DEAD:  # raced with its death
        me._links.pop(proc.pid, None)
        me._signal_exit(proc.pid, proc.exit_reason, linked=True)


def unlink(target: PID | str) -> None:
    """Remove a link between the calling process and ``target``; like ``unlink/1``.

    Unlinking a process that is not linked (or dead) does nothing.
    """
    me = _require_current("unlink()")
    proc = resolve(target)
    if proc is None:
        if type(target) is PID:
            me._links.pop(target, None)
        return
    me._links.pop(proc.pid, None)
    proc._links.pop(me.pid, None)


def monitor(target: PID | str) -> Ref:
    """Monitor ``target`` from the calling process; like ``erlang:monitor(process, T)``.

    When ``target`` exits, the caller receives ``("DOWN", ref, "process", pid, reason)``
    once.  If it is already dead (or the name is unknown), that message arrives at
    once with reason ``"noproc"``.

    Returns:
        The monitor's reference, for :func:`demonitor` and for matching the DOWN.

    Raises:
        NotInProcess: called outside a process.
    """
    me = _require_current("monitor()")
    ref = Ref()
    proc = resolve(target)
    if proc is None or proc._status is DEAD:
        me._mbox.put(("DOWN", ref, "process", target, "noproc"))
        return ref
    me._monitoring[ref] = proc.pid
    proc._monitors[ref] = _Monitor(ref, me)
    if proc._status is DEAD and me._monitoring.pop(ref, None) is not None:
        me._mbox.put(("DOWN", ref, "process", proc.pid, proc.exit_reason))
    return ref


def demonitor(ref: Ref, *, flush: bool = False) -> bool:
    """Remove the monitor ``ref``; like ``erlang:demonitor/2``.

    Args:
        ref: a reference returned by :func:`monitor`.
        flush: also remove its DOWN message if one already arrived.

    Returns:
        True if the monitor was active (no DOWN delivered yet), False otherwise.
    """
    me = _require_current("demonitor()")
    target = me._monitoring.pop(ref, None)
    if target is not None:
        p = target._proc
        if p is not None:
            p._monitors.pop(ref, None)
    if flush:
        me._mbox.remove_first(
            lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref
        )
    return target is not None


def exit_process(target: PID | str, reason: Any) -> None:
    """Send an exit signal to ``target``; like ``erlang:exit/2`` (``Process.exit/2``).

    ``"kill"`` always kills (the victim exits with ``"killed"``); ``"normal"`` is
    ignored unless the target traps exits (then it receives an ``EXIT`` message);
    any other reason kills the target unless it traps exits.

    Raises:
        NoProcess: the target is not alive.
    """
    proc = resolve(target)
    if proc is None:
        raise NoProcess(_noproc_message("exit_process()", target), target)
    me = _current.get()
    proc._signal_exit(me._pid if me is not None else None, reason)


def is_alive(target: PID | str) -> bool:
    """True if ``target`` names a live process; like ``erlang:is_process_alive/1``."""
    proc = resolve(target)
    return proc is not None and proc._status < EXITING


def processes() -> list[PID]:
    """PIDs of every live local process, oldest first; like ``erlang:processes/0``."""
    return [p.pid for p in list(_table.values())]


async def _maybe_await(result: Any) -> Any:
    # A type lookup, not inspect.isawaitable (an ABC isinstance check).
    if type(result) is CoroutineType or getattr(type(result), "__await__", None) is not None:
        return await result
    return result


class ChildTasks:
    """The task group of a process's own helper tasks: ``Actor.children``.

    ``start_soon(fn, *args)`` runs ``fn`` (sync or async) as a task owned by the
    process: it is cancelled, and waited for, when the process exits for any reason
    (``stop()`` and a kill included).  An exception in a child task crashes the
    process with that exception, as an error in a task group would.  Passing it as
    ``task_group=`` to ``start``/``Task.spawn`` makes the new process an owned child.
    """

    __slots__ = ("_owner",)

    def __init__(self, owner: Process) -> None:
        self._owner = owner

    def start_soon(self, fn: Callable[..., Any], *args: Any, name: object = None) -> None:
        """Start ``fn(*args)`` as a child task, like ``TaskGroup.start_soon``.

        Raises:
            RuntimeError: the process is exiting or dead.
        """
        owner = self._owner
        if owner._status >= EXITING or owner._tg is None:
            raise RuntimeError(
                f"{owner!r} is not running: it cannot start child tasks (start them from "
                "init/run/handlers while the process is alive)"
            )
        if owner._tasks is None:
            owner._tasks = set()
        owner._tg.start_soon(_run_child_task, owner, fn, args, name=name)


async def _run_child_task(owner: Process, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    scope = anyio.CancelScope()
    tasks = owner._tasks
    assert tasks is not None
    tasks.add(scope)
    try:
        with anyio.CancelScope(shield=True), scope:
            if owner._status >= EXITING:
                return
            await _maybe_await(fn(*args))
    except _Exit as e:
        owner._force_exit(e.reason)
    except Exception as e:
        log.error("a child task of %r crashed it: %r", owner, e, exc_info=e)
        owner._force_exit(e)
    finally:
        tasks.discard(scope)
        if not tasks:
            w = owner._tasks_waiter
            if w is not None:
                owner._tasks_waiter = None
                w.set(None)
