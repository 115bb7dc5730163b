"""Processes: the control block, lifecycle, exit signals, exit hooks, ownership.

A process is a :class:`Proc` -- the *process control block*, a ``__slots__`` record of
everything the runtime knows about it: PID, status, mailbox, loop, links, monitors,
owner, owned children, tasks, registered name, exit reason -- plus a *body*, the
behaviour object (a user's ``Actor`` subclass instance) that the runtime drives
through three hooks (:class:`Body`).  The body holds one reference to its control
block (``_otp_pcb``); nothing else of the runtime lives in the user's object.

Erlang's rules:

* a process exits with a *reason*: ``"normal"``, ``"shutdown"``, ``"killed"``, or the
  exception that crashed it (logged once, with its traceback, by the crashing process);
* an exit signal other than ``"normal"`` kills a linked process, unless it traps exits
  (``trap_exit``), in which case it gets ``("EXIT", pid, reason)`` instead; ``"kill"``
  cannot be trapped and spreads as ``"killed"``;
* everything that wants to know when a process dies (monitors, calls waiting for a
  reply, supervisors, registries) installs an *exit hook* with :func:`on_exit`, the one
  place that handles the race with a process that is already dead.

Ownership is anyotp's structured-concurrency rule: a process started *by* a process
(supervisor children, ``spawn_child_actor``, tasks) is owned by it, shielded from
outside cancellation, and stopped by its owner -- in reverse start order, each given
its shutdown timeout -- before the owner's ``terminate`` runs.

A process's body runs as a task of an anyio task group (asyncio or trio) or, for the
sync API, on a thread of its own (a *thread loop*, see ``_backend.new_thread_loop``).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import threading
import weakref
from collections.abc import Callable
from types import CoroutineType
from typing import Any, Final, Literal, Protocol

import anyio

from .. import _telemetry
from .._exceptions import CallExit, NotInProcess, StartError
from ._backend import (
    TIMEOUT,
    Loop,
    Waiter,
    check_timeout,
    current_loop,
    thread_waiter,
)
from ._ids import PID, Ref, table
from ._mailbox import Mailbox
from ._names import register_or_holder, release_name

# Where anyio's asyncio backend keeps each task's innermost cancel scope, so that a
# process on the asyncio host, cancelled without a scope of its own, still honours a
# shielded scope it is in (see _NativeCancel).  If a future anyio keeps it elsewhere,
# those processes get an anyio scope each, as on trio.
try:
    from anyio._backends._asyncio import CancelScope as _AioScope
    from anyio._backends._asyncio import _task_states as _aio_task_states

    _probe = _AioScope()
    _NATIVE = hasattr(_probe, "_shield") and hasattr(_probe, "_parent_scope")
    del _probe
except (ImportError, AttributeError, TypeError):  # pragma: no cover
    _aio_task_states = {}  # type: ignore[assignment]
    _NATIVE = False

_EMPTY_CONTEXT: Final = contextvars.Context()

__all__ = [
    "DEAD",
    "EXITING",
    "REDUCTIONS",
    "RUNNING",
    "STARTING",
    "Body",
    "ChildTasks",
    "DeathWatch",
    "ExitHook",
    "InitFailed",
    "Proc",
    "ProcessExit",
    "Shutdown",
    "Status",
    "cancel_exit_hook",
    "check_shutdown",
    "crash_report",
    "current_process",
    "is_awaitable",
    "is_process_class",
    "maybe_await",
    "on_exit",
    "set_current_process",
    "spawn",
    "stop",
    "stop_all",
    "stop_blocking",
    "table",
    "wait_dead",
]

#: The process runtime's logger (crash reports, kills); behaviours log under their
#: own concern: ``anyotp.supervisor``, ``anyotp.genserver``, ``anyotp.sync``...
log = logging.getLogger("anyotp.process")

_get_ident = threading.get_ident

#: The reduction budget: a process (or a task awaiting ``send``) yields to its event
#: loop at least once every ``REDUCTIONS`` messages handled or sent, as the BEAM
#: preempts a process after a budget of reductions, so no process can monopolise its
#: loop.  A power of two (checked with a mask).  (bench: casts, await_cast, ping_pong)
REDUCTIONS: Final = 128
_REDUCTION_MASK: Final = REDUCTIONS - 1

#: How a supervisor (or any owner) stops a child: seconds to wait after asking it to
#: exit with ``"shutdown"`` before killing it, ``"brutal_kill"`` to kill at once, or
#: ``None`` to wait forever (the default for supervisors, as in OTP).
Shutdown = float | Literal["brutal_kill"] | None


def check_shutdown(shutdown: Any, what: str) -> Shutdown:
    """A valid shutdown: None, ``"brutal_kill"`` or seconds >= 0 (as a float; an int
    too large for one waits forever).

    Raises:
        TypeError: ``shutdown`` is neither (a str, a bool...).
        ValueError: it is a negative number or NaN.
    """
    if type(shutdown) is str and shutdown == "brutal_kill":
        return "brutal_kill"
    return check_timeout(
        shutdown, what, "shutdown must be seconds >= 0, 'brutal_kill' or None (wait forever)"
    )


class Status(enum.IntEnum):
    """Lifecycle of a process."""

    STARTING = 0  #: spawned; ``init`` has not returned yet
    RUNNING = 1  #: ``init`` returned; handling messages
    EXITING = 2  #: stopping its children and running ``terminate``
    DEAD = 3  #: gone: links and monitors have been told


STARTING, RUNNING, EXITING, DEAD = Status.STARTING, Status.RUNNING, Status.EXITING, Status.DEAD


class _NoScope:
    """A context manager that does nothing.  Its methods are static, so entering it
    makes no bound method that a suspended process would hold for its whole life
    (bench: million, spawn memory)."""

    __slots__ = ()

    @staticmethod
    def __enter__() -> None:
        return None

    @staticmethod
    def __exit__(*exc_info: object) -> None:
        return None


_NO_SHIELD: Final = _NoScope()

_current: contextvars.ContextVar[Proc | None] = contextvars.ContextVar(
    "anyotp_current_process", default=None
)
#: the process running the current task or thread, or None
current_process: Final = _current.get


def set_current_process(proc: Proc | None) -> None:
    """Mark the calling thread as running ``proc`` (a thread process's own thread)."""
    _current.set(proc)


class ProcessExit(BaseException):
    """Raised inside a process to make it exit with ``reason`` (``Actor.stop``)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class InitFailed:
    """What a start acknowledgement carries when ``init`` failed."""

    __slots__ = ("exc", "reason")

    def __init__(self, reason: Any, exc: BaseException | None) -> None:
        self.reason = reason
        self.exc = exc


class ExitHook(Protocol):
    """Something told once when a process dies: ``hook.down(pid, reason)``.

    Called on the dying process's thread; it must not block, and it must tolerate
    being called twice (a hook installed while the process dies may be told by both
    the dying process and :func:`on_exit`).
    """

    def down(self, pid: PID, reason: Any) -> None: ...


class Body(Protocol):
    """What the runtime drives: the behaviour object of a process.

    ``_otp_boot`` runs ``init``, sets ``ack`` (``ack.set(None)``) once started and
    returns the initial state; ``_otp_serve`` is the main loop (it exits by returning
    -- reason ``"normal"`` -- raising :class:`ProcessExit`, or crashing);
    ``_otp_cleanup`` runs after the owned children stopped (``terminate``) and returns
    the final reason.  ``trap_exit`` is read when an exit signal arrives.
    """

    trap_exit: bool

    async def _otp_boot(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> Any: ...

    async def _otp_serve(self, state: Any) -> None: ...

    async def _otp_cleanup(self, reason: Any) -> Any: ...


class Proc:
    """The process control block: everything the runtime knows of one process.

    Its fields are the core's; layers above read them (``pid``, ``status``, ``mbox``,
    ``state``, ``exit_reason``...) and change them only through the core's functions.
    """

    __slots__ = (
        "__weakref__",
        "body",
        "child_tasks",
        "cleanup_scope",
        "exit_reason",
        "finished",
        "last_message",
        "links",
        "log_crashes",
        "loop",
        "mbox",
        "monitoring",
        "monitors",
        "name",
        "owned",
        "owner",
        "parent",
        "pending_exit",
        "pid",
        "reductions",
        "scope",
        "state",
        "status",
        "task",
        "tasks",
        "tasks_waiter",
        "tg",
        "thread",
    )

    def __init__(self, body: Any, loop: Loop) -> None:
        #: the behaviour object (the user's Actor instance)
        self.body: Any = body
        pid = PID._new(self)
        self.pid: PID = pid
        self.status: Status = STARTING
        self.mbox: Mailbox = Mailbox(loop.new_waiter, loop.aio)
        self.loop: Loop = loop
        # links as a dict used as a set: an empty dict is 64 bytes and untracked by the
        # GC, an empty set 216 bytes and tracked (bench: spawn, million)
        self.links: dict[PID, None] = {}
        #: exit hooks on this process (monitors of it, calls to it, death watches)
        self.monitors: dict[Any, ExitHook] = {}
        #: monitors this process holds on others: ref -> the monitored PID
        self.monitoring: dict[Ref, PID] = {}
        #: registered name (``register``), or None
        self.name: str | None = None
        #: the process that started it, or None
        self.parent: PID | None = None
        #: the process that owns it (stops it when it exits), or None
        self.owner: Proc | None = None
        #: owned processes, oldest first, with their shutdown
        self.owned: dict[Proc, Shutdown] = {}
        self.tasks: set[anyio.CancelScope] | None = None
        self.tasks_waiter: Waiter | None = None
        self.child_tasks: ChildTasks | None = None
        self.tg: Any = None
        #: the task running the body (asyncio.Task / trio Task), for introspection
        self.task: Any = None
        #: what an exit signal cancels: an anyio scope, or (asyncio host) the task
        self.scope: Any = None
        #: what a kill cancels while the process cleans up (an anyio scope, or its
        #: task on the asyncio host)
        self.cleanup_scope: Any = None
        #: the reason an exit signal asked for, while the process has not acted on it
        self.pending_exit: Any = None
        #: final exit reason once dead
        self.exit_reason: Any = None
        #: the state the body last returned (introspection, ``terminate``)
        self.state: Any = None
        #: messages handled (and sends awaited) so far: the reduction count
        self.reductions: int = 0
        #: the message being handled when the body crashed (for the crash report)
        self.last_message: Any = None
        #: False: a crash is not logged (``ChildSpec(log_crashes=False)``, or the
        #: behaviour's ``log_crashes`` class attribute)
        self.log_crashes: bool = getattr(body, "log_crashes", True)
        #: thread processes: their thread, and whether they finished (died)
        self.thread: threading.Thread | None = None
        self.finished: bool = False
        if loop.calls is not None:  # a thread loop: signals wake the thread
            loop.wake = self.mbox.wake
        table[pid.id] = self

    # --------------------------------------------------------------- exit signals

    def signal_exit(self, sender: PID | None, reason: Any, linked: bool = False) -> None:
        """Deliver an exit signal, like ``exit(Pid, Reason)`` or a dying link.  Any thread."""
        if self.status is DEAD:
            return
        if _get_ident() != self.loop.tid:
            if self.loop.kind == "thread" and not linked and _is_str(reason, "kill"):
                _kill_thread_process(self)  # a thread cannot be interrupted: abandon it
                return
            self.loop.run_soon_threadsafe(self.signal_exit, sender, reason, linked)
            return
        if _is_str(reason, "kill") and not linked:
            self.force_exit("killed")
        elif self.body.trap_exit:
            self.mbox.put(("EXIT", sender, reason))
        elif _is_str(reason, "normal"):
            if sender is not None and sender == self.pid:
                self.force_exit("normal")
        else:
            self.force_exit(reason)

    def force_exit(self, reason: Any) -> None:
        """Make this process exit with ``reason`` now, whatever it traps.  Any thread."""
        if _get_ident() != self.loop.tid:
            if self.loop.kind == "thread" and _is_str(reason, "killed"):
                _kill_thread_process(self)
                return
            self.loop.run_soon_threadsafe(self.force_exit, reason)
            return
        status = self.status
        if status is DEAD:
            return
        if status is EXITING:
            # Already stopping; only a kill interrupts terminate/children shutdown.
            if _is_str(reason, "killed"):
                cleanup = self.cleanup_scope
                if cleanup is not None:
                    self.pending_exit = reason
                    cleanup.cancel()
            return
        pending = self.pending_exit
        if pending is None or (_is_str(reason, "killed") and not _is_str(pending, "killed")):
            # The first reason stands until the process acts on it, except against a
            # kill: untrappable, it overrides one not yet acted on (say a "shutdown"
            # that waits for a shielded section), so terminate is not run and a
            # supervisor's kill after its shutdown timeout is not lost.
            self.pending_exit = reason
        scope = self.scope
        if scope is not None:
            if scope is _NATIVE_UNUSED:  # made on the first exit signal (see _main)
                scope = self.scope = _NativeCancel(self)
            scope.cancel()

    def exit_self(self, reason: Any) -> None:
        """Act on an exit signal the process sent itself: on its own task it raises
        :class:`ProcessExit` at once (Erlang: the signal takes effect before ``exit/2``
        returns); elsewhere it is :meth:`force_exit`."""
        if _current.get() is self and _get_ident() == self.loop.tid:
            raise ProcessExit(reason)
        self.force_exit(reason)

    # ---------------------------------------------------------------- death

    def die(self, reason: Any) -> None:
        """Final bookkeeping: unregister, notify links and exit hooks.  Any thread."""
        pid = self.pid
        self.exit_reason = reason  # before DEAD: on_exit reads it once it sees DEAD
        self.status = DEAD
        table.pop(pid.id, None)
        pid._proc = None
        if self.name is not None:
            release_name(self)
        owner = self.owner
        if owner is not None:
            owner.owned.pop(self, None)
        # Owned children still alive here (the owner was killed mid-shutdown) are told
        # to stop without waiting: nothing is left behind.
        for child in list(self.owned):
            child.force_exit("shutdown")
        self.owned.clear()
        if self.tasks:
            for scope in list(self.tasks):
                scope.cancel()
        dying = getattr(self.body, "_otp_dying", None)
        if dying is not None:
            try:
                dying(reason)
            except Exception as e:  # a behaviour hook failed: still finish dying
                log.error("%r: _otp_dying(%r) raised %r", self, reason, e, exc_info=e)
        links = self.links
        self.links = {}
        for other in links:
            p = other._proc
            if p is not None:
                p.links.pop(pid, None)
                p.signal_exit(pid, reason, linked=True)
            elif not other.is_local:
                _remote_exit(pid, other, reason)
        monitors = self.monitors
        self.monitors = {}
        for m in list(monitors.values()):
            try:
                m.down(pid, reason)
            except Exception as e:
                log.error("%r: exit hook %r raised %r", self, m, e, exc_info=e)
        for ref, target in self.monitoring.items():
            p = target._proc
            if p is not None:
                p.monitors.pop(ref, None)
            elif not target.is_local:
                _remote_demonitor(ref, target)
        self.monitoring.clear()
        self.mbox.clear()

    def unlink_all_quietly(self) -> None:
        """Drop every link without signals (a failed ``init``: the starter is told)."""
        me = self.pid
        for pid in self.links:
            p = pid._proc
            if p is not None:
                p.links.pop(me, None)
        self.links.clear()

    def on_loop(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on this process's loop thread if called elsewhere; True if
        it was handed over (the caller must then not run it)."""
        if _get_ident() != self.loop.tid:
            self.loop.run_soon_threadsafe(fn, *args)
            return True
        return False

    def __repr__(self) -> str:
        return f"<{type(self.body).__name__} {self.pid!r} {self.status.name.lower()}>"


def _is_str(value: Any, text: str) -> bool:
    return type(value) is str and value == text


# Filled in by the routing layer (a lower module cannot import it): signals to PIDs of
# other nodes go through the transport.
def _remote_exit(sender: PID, to: PID, reason: Any) -> None:
    hook = _remote_hooks.get("exit")
    if hook is not None:
        hook(sender, to, reason)


def _remote_demonitor(ref: Ref, target: PID) -> None:
    hook = _remote_hooks.get("demonitor")
    if hook is not None:
        hook(ref, target)


_remote_hooks: dict[str, Callable[..., None]] = {}


def set_remote_hooks(exit: Callable[..., None], demonitor: Callable[..., None]) -> None:
    """Install how a dying process signals links and monitors on other nodes."""
    _remote_hooks["exit"] = exit
    _remote_hooks["demonitor"] = demonitor


# ------------------------------------------------------------------ exit hooks


def on_exit(proc: Proc, hook: ExitHook, key: Any = None) -> bool:
    """Tell ``hook`` when ``proc`` dies: ``hook.down(pid, reason)``, once.

    The one way to learn of a death.  ``key`` (default: the hook itself) removes it
    with :func:`cancel_exit_hook`.  If ``proc`` is already dead, ``hook.down`` runs
    now, with its exit reason, and False is returned.
    """
    if key is None:
        key = hook
    if proc.status is not DEAD:
        proc.monitors[key] = hook
        if proc.status is not DEAD:
            return True
        proc.monitors.pop(key, None)  # raced with the death
    hook.down(proc.pid, proc.exit_reason)
    return False


def cancel_exit_hook(proc: Proc, key: Any) -> None:
    """Remove the exit hook installed under ``key`` (nothing if it is gone)."""
    proc.monitors.pop(key, None)


class DeathWatch:
    """An exit hook that fills a waiter with the exit reason."""

    __slots__ = ("waiter",)

    def __init__(self, waiter: Waiter) -> None:
        self.waiter = waiter

    def down(self, pid: PID, reason: Any) -> None:
        self.waiter.set(reason)


async def wait_dead(proc: Proc) -> Any:
    """Wait until ``proc`` is dead; return its exit reason.

    Raises:
        NotInProcess: no event loop is running in this thread.
    """
    if proc.status is DEAD:
        return proc.exit_reason
    loop = current_loop()
    if loop is None:
        raise NotInProcess("waiting for a process to exit needs a running event loop")
    watch = DeathWatch(loop.new_waiter())
    on_exit(proc, watch)
    try:
        return await watch.waiter.wait(None)
    finally:
        proc.monitors.pop(watch, None)


# ----------------------------------------------------------- stop and wait


async def stop(proc: Proc, reason: Any = "shutdown", timeout: Shutdown = 5.0) -> Any:
    """Stop ``proc`` and wait until it is dead; return its exit reason.

    The one stop-and-wait, like ``supervisor``'s shutdown of a child: ask it to exit
    with ``reason`` (whatever it traps), wait ``timeout`` seconds, then kill it
    (``"brutal_kill"`` kills at once; None waits forever).  Links between the calling
    process and ``proc`` are removed first, so the caller is not hit by the exit.
    """
    timeout = check_shutdown(timeout, f"stopping {proc!r}")  # before anything is done
    if proc.status is DEAD:
        return proc.exit_reason
    loop = current_loop()
    if loop is None:
        raise NotInProcess("stopping a process needs a running event loop")
    me = _current.get()
    if me is not None and me is not proc:
        proc.links.pop(me.pid, None)
        me.links.pop(proc.pid, None)
    watch = DeathWatch(loop.new_waiter())
    if not on_exit(proc, watch):
        return proc.exit_reason
    sender = me.pid if me is not None else None
    try:
        if timeout == "brutal_kill":
            proc.signal_exit(sender, "kill")
            return await watch.waiter.wait(None)
        proc.force_exit(reason)
        wait = timeout
        got = await watch.waiter.wait(wait)
        if got is TIMEOUT:
            log.warning("%r did not stop within %s s of %s; killing it", proc, timeout, reason)
            # A waiter that timed out is spent (on asyncio it keeps TIMEOUT): wait on a
            # fresh one, or the kill would not be waited for.
            watch.waiter = loop.new_waiter()
            if proc.status is DEAD:
                return proc.exit_reason
            proc.signal_exit(sender, "kill")
            got = await watch.waiter.wait(None)
        return got
    finally:
        proc.monitors.pop(watch, None)


async def stop_all(procs: list[tuple[Proc, Shutdown]], reason: Any = "shutdown") -> None:
    """Stop every process concurrently, each within its own shutdown, and wait for all.

    How a dynamic supervisor stops its children (OTP stops them concurrently).
    """
    procs = [(p, s) for p, s in procs if p.status is not DEAD]
    if not procs:
        return
    if len(procs) == 1:
        await stop(procs[0][0], reason, procs[0][1])
        return
    async with anyio.create_task_group() as tg:
        for p, s in procs:
            tg.start_soon(stop, p, reason, s)


def stop_blocking(proc: Proc, reason: Any, timeout: float | None) -> bool:
    """Ask ``proc`` to exit with ``reason`` and block this (non-loop) thread until it
    is dead or ``timeout`` seconds passed; True if it died."""
    watch = DeathWatch(thread_waiter())
    if not on_exit(proc, watch):
        return True
    try:
        if reason is not None:
            proc.force_exit(reason)
        return watch.waiter.wait_blocking(timeout) is not TIMEOUT
    finally:
        proc.monitors.pop(watch, None)


def _kill_thread_process(proc: Proc) -> None:
    """Kill a thread process from another thread: it dies now; its thread, which
    cannot be interrupted, is abandoned and ends when its handler returns."""
    killer = getattr(proc.body, "_otp_kill", None)
    if killer is not None:
        killer()


# ------------------------------------------------------------------- spawning


async def spawn(
    body: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    task_group: Any,
    *,
    link: bool = False,
    owner: Proc | None = None,
    shutdown: Shutdown = 5.0,
    name: Any = None,
    loop: Loop | None = None,
    log_crashes: bool | None = None,
) -> PID:
    """Spawn a process running ``body`` in ``task_group``; wait for its ``init``.

    Like ``proc_lib:start_link``: returns once ``init`` returned.  ``owner`` makes it
    an owned child (shielded, stopped by the owner); ``link`` links it to the calling
    process; ``name`` registers it (a str or a via-name) atomically with the start;
    ``loop`` (a thread loop) runs it on a thread instead of the task group's loop;
    ``log_crashes=False`` keeps its crashes out of the log.

    Raises:
        NotInProcess: no event loop, or ``link`` outside a process.
        StartError: ``init`` raised (chained) or exited, or ``name`` is taken.
    """
    if owner is not None and shutdown != 5.0:  # checked now, not when the owner exits
        shutdown = check_shutdown(shutdown, f"starting {type(body).__name__}")
    here = owner.loop if owner is not None and owner.loop.kind != "thread" else current_loop()
    if here is None:
        raise NotInProcess("starting a process needs a running event loop (anyio.run(...))")
    if loop is None:
        new_loop = getattr(body, "_otp_new_loop", None)  # a thread process
        loop = here if new_loop is None else new_loop()
    if getattr(body, "_otp_pcb", None) is not None:
        raise RuntimeError(f"{body!r} was already started; start a new instance instead")
    parent = _current.get()
    if link and parent is None:  # checked before the PCB exists: nothing is left behind
        raise NotInProcess("start_link() links to the calling process: call it from one")
    proc = Proc(body, loop)
    body._otp_pcb = proc
    proc.tg = task_group
    if log_crashes is not None:
        proc.log_crashes = log_crashes
    if parent is not None:
        proc.parent = parent.pid
    if owner is not None:
        proc.owner = owner
        owner.owned[proc] = shutdown
    if link and parent is not None:
        parent.links[proc.pid] = None
        proc.links[parent.pid] = None
    if name is not None:
        try:
            holder = register_or_holder(name, proc)
        except BaseException as e:  # a bad name or registry: leave no half-started process
            _abandon(proc, parent)
            if isinstance(e, Exception):
                raise StartError(
                    f"cannot start {type(body).__name__} as {name!r}: {e}", ("bad_name", e)
                ) from e
            raise
        if holder is not None:
            _abandon(proc, parent)
            raise StartError(
                f"cannot start {type(body).__name__} as {name!r}: the name is already "
                f"registered to {holder!r} (stop that process, or pick another name)",
                ("already_started", holder),
            )
    ack = here.new_waiter()  # set from the process's task or thread: any thread
    try:
        if loop.kind == "asyncio" and loop is here:
            _aio_host(task_group).start(proc, _main(proc, args, kwargs, ack, False))
        else:
            task_group.start_soon(_main, proc, args, kwargs, ack, True, name=type(body).__name__)
    except BaseException:
        proc.die("noproc")
        raise
    got = await ack  # no wait() coroutine per start (bench: spawn, million)
    if type(got) is InitFailed:
        message = f"{type(body).__name__} failed to start: init exited with {got.reason!r}"
        raise StartError(message, got.reason) from got.exc
    if _telemetry.enabled:
        _telemetry.emit_process_spawn(proc)
    return proc.pid


def _abandon(proc: Proc, parent: Proc | None) -> None:
    proc.status = DEAD
    table.pop(proc.pid.id, None)
    proc.pid._proc = None
    if proc.owner is not None:
        proc.owner.owned.pop(proc, None)
    if parent is not None:
        parent.links.pop(proc.pid, None)


async def _main(
    proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter, shield: bool
) -> None:
    body = proc.body
    thread_main = getattr(body, "_otp_thread_task", None)
    if thread_main is not None:  # a thread process: this task stands for it
        await thread_main(proc, args, kwargs, ack)
        return
    # Owned processes are shielded from outside cancellation: their owner stops
    # them, in order.  The shield is entered before the first checkpoint.
    # (An unowned process enters a shared no-op context instead of a scope: an anyio
    # CancelScope costs ~1 KB per process; bench: spawn, million.  A process on a
    # host task (asyncio) has no outer scope at all: `shield` is False.)
    with anyio.CancelScope(shield=True) if shield and proc.owner is not None else _NO_SHIELD:
        # The task runs in a context of its own, which dies with it: nothing to reset.
        _current.set(proc)
        get_task = proc.loop.current_task
        proc.task = get_task() if get_task is not None else None
        reason: Any = "normal"
        outer_cancel: BaseException | None = None
        crashed = False
        cancelled_exc = proc.loop.cancelled_exc
        native = not shield and _NATIVE
        if native:
            # A process on the asyncio host is a bare task that only its own exit
            # signals cancel: they cancel the task itself, with no anyio scope to
            # make, enter, exit and deliver through, and the _NativeCancel that does
            # it is made on the first signal (bench: spawn, million).
            scope: Any = _NATIVE_UNUSED
        else:
            scope = anyio.CancelScope()
        proc.scope = scope
        try:
            with scope:
                if proc.pending_exit is not None:
                    if native:
                        scope = proc.scope = _NativeCancel(proc)
                    scope.cancel()
                state = await body._otp_boot(proc, args, kwargs, ack)
                # Started: drop what only the start needed, so a long-lived idle
                # process does not keep it (fewer objects for the GC to walk).
                args = kwargs = ack = None  # type: ignore[assignment]
                await body._otp_serve(state)
        except ProcessExit as e:
            reason = e.reason
        except cancelled_exc as e:
            if not (native and proc.scope.cancel_called):
                reason = "shutdown"
                outer_cancel = e
        except Exception as e:
            reason = e
            crashed = True
        except BaseException as e:  # KeyboardInterrupt, SystemExit: die, then re-raise
            reason = e
            outer_cancel = e
        if native and proc.scope.cancel_called and proc.scope.settle():
            await _absorb_cancel(proc.task)
        if proc.pending_exit is not None and outer_cancel is None:
            reason = proc.pending_exit
            crashed = False
        init_failed: InitFailed | None = None
        if proc.status is STARTING:
            # init failed: the starter gets a StartError and nothing is logged twice
            proc.unlink_all_quietly()
            init_failed = InitFailed(reason, reason if isinstance(reason, BaseException) else None)
            crashed = False
        if crashed:
            report_crash(proc, reason)
            if _telemetry.enabled:
                _telemetry.emit_process_crash(proc, reason)
        proc.status = EXITING
        if shield:
            with anyio.CancelScope(shield=True) as cleanup:
                proc.cleanup_scope = cleanup
                reason = await _cleanup(proc, body, reason)
            killed = cleanup.cancel_called
        else:
            # A process on the asyncio host is a bare task that nothing but its own
            # exit signals cancels: its cleanup needs no shield scope, and a kill
            # during it cancels the task itself (bench: spawn, million).
            killer = _NativeCancel(proc, DEAD)
            proc.cleanup_scope = killer
            try:
                reason = await _cleanup(proc, body, reason)
            except cancelled_exc:
                if not killer.cancel_called:
                    raise
            killed = killer.cancel_called
            if killed and killer.settle():
                await _absorb_cancel(proc.task)
        if killed:  # killed while stopping children or in terminate
            reason = "killed"
        proc.die(reason)
        if _telemetry.enabled:
            _telemetry.emit_process_exit(proc, reason)
        if init_failed is not None and ack is not None:
            # Only now: when start() raises, the children init started are stopped
            # and the name is free again (OTP's start_link returns after cleanup).
            ack.set(init_failed)
        if outer_cancel is not None:
            raise outer_cancel


async def _cleanup(proc: Proc, body: Any, reason: Any) -> Any:
    """Stop the owned children (a supervisor's first, in spec order), then run the
    behaviour's cleanup (``terminate``) unless killed; return the final reason."""
    stop_children = getattr(body, "_otp_stop_owned", None)
    if stop_children is not None:
        await stop_children()
    await stop_owned(proc)
    if not _is_str(reason, "killed"):
        reason = await body._otp_cleanup(reason)
    return reason


class _NativeUnused(_NoScope):
    """The place of a :class:`_NativeCancel` no exit signal has needed yet."""

    __slots__ = ()

    cancel_called: Final = False


_NATIVE_UNUSED: Final = _NativeUnused()


class _NativeCancel(_NoScope):
    """How exit signals stop a process on the asyncio host: by cancelling its task.

    It stands where an anyio ``CancelScope`` stands for other processes (``with``,
    ``cancel()``, ``cancel_called``) and keeps its promises: inside an anyio scope
    with ``shield=True`` the process is not interrupted -- the cancellation lands at
    its first checkpoint after the shield -- and a process that swallows the
    cancellation is cancelled again until it is out of the phase this cancels (its
    body, or for a kill its cleanup), as anyio re-delivers.  A shielded task is looked
    at again right after each of its steps (a callback on the future it waits for,
    which runs after the task's own wake-up), so waiting for a shield costs nothing.
    """

    __slots__ = ("cancel_called", "delivered", "finished", "proc", "until")

    def __init__(self, proc: Proc, until: Status = EXITING) -> None:
        self.proc = proc
        #: the status at which this cancellation has done its work
        self.until = until
        self.cancel_called = False
        #: task.cancel() calls not yet taken back (Task.uncancel) by the process
        self.delivered = 0
        #: settled: the phase is over, nothing more is delivered
        self.finished = False

    # __enter__/__exit__: _NoScope's, static: no bound method held by the suspended
    # process (it stands in a `with`)

    def cancel(self) -> None:
        if not self.cancel_called:
            self.cancel_called = True
            self._deliver()

    def _deliver(self, _step: Any = None) -> None:
        proc = self.proc
        task = proc.task
        if self.finished or proc.status >= self.until or task is None or task.done():
            return
        aio = proc.loop.aio
        if aio is None or aio.is_closed():
            return
        if _in_anyio_shield(task):
            # Look again when the task has taken its next step: after the future it
            # waits for is done, and its wake-up (added first) has run.
            waiting = getattr(task, "_fut_waiter", None)
            if waiting is not None and not waiting.done():
                waiting.add_done_callback(self._deliver, context=_EMPTY_CONTEXT)
                return
        else:
            task.cancel()
            self.delivered += 1
        # look again next turn, after the task's step: the cancellation was swallowed
        aio.call_soon(self._deliver, context=_EMPTY_CONTEXT)

    def settle(self) -> bool:
        """The phase ended: take back the cancellations delivered to the task.  True
        if one is still pending -- delivered from the task itself and never awaited
        through (``Task.uncancel`` leaves it pending before Python 3.13): the caller
        takes it with :func:`_absorb_cancel`."""
        self.finished = True
        task = self.proc.task
        for _ in range(self.delivered):
            task.uncancel()
        self.delivered = 0
        return bool(getattr(task, "_must_cancel", False))


async def _absorb_cancel(task: Any) -> None:
    """Take a cancellation still pending on the running ``task`` at a checkpoint."""
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task.uncancel()


def _in_anyio_shield(task: Any) -> bool:
    """Is ``task`` inside an anyio cancel scope with ``shield=True`` right now?"""
    state = _aio_task_states.get(task)
    scope = state.cancel_scope if state is not None else None
    while scope is not None:
        if scope._shield:
            return True
        scope = scope._parent_scope
    return False


# ------------------------------------------------------- the asyncio process host


class _AioHost:
    """The processes spawned into one anyio task group, on asyncio.

    anyio's ``TaskGroup.start_soon`` costs a task handle, a wrapper coroutine, a task
    state, events and callbacks per task: a third of a process's spawn time and
    objects (bench: spawn, million).  On asyncio a process is instead a bare task of
    the loop, and one *host* task -- an ordinary child of the task group -- stands
    for all of them: the group does not exit before the host, the host does not exit
    before the last of its processes, and when the group is cancelled the host stops
    its unowned processes with ``"shutdown"`` (owned ones are stopped by their owners,
    in order) and waits for every one.  So nothing outlives its task group, and
    cancelling a tree stops it top-down, as with one task per process.
    """

    __slots__ = (
        "__weakref__",
        "errors",
        "on_done",
        "procs",
        "running",
        "stopping",
        "tg",
        "waiter",
    )

    def __init__(self, tg: Any) -> None:
        self.tg = tg
        self.procs: dict[Any, Proc] = {}
        self.waiter: Waiter | None = None
        self.running = True
        self.stopping = False
        self.errors: list[BaseException] = []
        # one bound method for every task's done callback, not one per task
        self.on_done = self._done

    def start(self, proc: Proc, coro: Any) -> None:
        # the process's loop, not asyncio.get_running_loop() (a getpid() system call;
        # bench: spawn, million)
        aio = proc.loop.aio
        assert aio is not None
        task = aio.create_task(coro, name=type(proc.body).__name__)
        self.procs[task] = proc
        # in an empty context: no copy of the spawner's context per process, which the
        # callback does not need (bench: million, spawn memory)
        task.add_done_callback(self.on_done, context=_EMPTY_CONTEXT)
        if self.stopping and proc.owner is None:
            # started into a group that is being cancelled: as a task started there
            # would be cancelled at once, the process is stopped at once
            proc.force_exit("shutdown")

    def _done(self, task: Any) -> None:
        self.procs.pop(task, None)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:  # KeyboardInterrupt, SystemExit: the group gets it
                self.errors.append(exc)
        w = self.waiter
        if w is not None and (not self.procs or self.errors):
            w.set(None)

    async def _wait_all(self) -> None:
        loop = current_loop()
        assert loop is not None
        while self.procs and not self.errors:
            self.waiter = w = loop.new_waiter()
            try:
                await w
            finally:
                self.waiter = None

    async def run(self) -> None:
        try:
            await self._wait_all()
        except BaseException:  # the group is cancelled (or failed): stop what is ours
            self.stopping = True
            with anyio.CancelScope(shield=True):
                # Processes cancelled through their task are told from here; with
                # anyio scopes, from a loop callback: CancelScope.cancel() formats the
                # repr of the task it is called from into its cancel message, once
                # per process (bench: spawn).
                call_soon = asyncio.get_running_loop().call_soon
                for proc in list(self.procs.values()):
                    if proc.owner is None:
                        if _NATIVE:
                            try:
                                proc.force_exit("shutdown")
                            except Exception as e:  # tell the others all the same
                                log.error("stopping %r raised %r", proc, e, exc_info=e)
                        else:
                            call_soon(proc.force_exit, "shutdown")
                self.errors.clear()
                await self._wait_all()
            raise
        finally:
            global _last_host
            self.running = False
            if _last_host is self:
                _last_host = None
            if _aio_hosts.get(self.tg) is self:
                del _aio_hosts[self.tg]
        if self.errors:
            raise self.errors[0]


_aio_hosts: weakref.WeakKeyDictionary[Any, _AioHost] = weakref.WeakKeyDictionary()


#: the host :func:`_aio_host` returned last: most spawns go to the same task group
#: as the one before, and a WeakKeyDictionary lookup makes a weakref each time
#: (bench: spawn, million)
_last_host: _AioHost | None = None


def _aio_host(task_group: Any) -> _AioHost:
    """The running host of ``task_group``, started on first use (raises like
    ``start_soon`` if the group is not active)."""
    global _last_host
    host = _last_host
    if host is not None and host.tg is task_group and host.running:
        return host
    host = _aio_hosts.get(task_group)
    if host is None or not host.running:
        host = _AioHost(task_group)
        task_group.start_soon(host.run, name="anyotp processes")
        _aio_hosts[task_group] = host
    _last_host = host
    return host


async def stop_owned(proc: Proc) -> None:
    """Cancel ``proc``'s child tasks and wait for them; then stop its owned
    processes, newest first, each within its shutdown timeout."""
    tasks = proc.tasks
    if tasks:
        w = proc.loop.new_waiter()
        proc.tasks_waiter = w
        for scope in list(tasks):
            scope.cancel()
        if tasks:
            await w.wait(None)
    while proc.owned:
        child, shutdown = proc.owned.popitem()
        await stop(child, "shutdown", shutdown)


# ----------------------------------------------------------------- crash reports


def crash_report(proc: Proc, reason: Any) -> dict[str, Any]:
    """The structured fields of a crash report, like OTP's ``proc_lib`` crash report:
    ``pid``, ``name`` (registered), ``behaviour`` (the class), ``reason``,
    ``initial_call`` (``module.Class.init``) and ``last_message`` (being handled)."""
    cls = type(proc.body)
    return {
        "pid": proc.pid,
        "name": proc.name,
        "behaviour": cls.__name__,
        "reason": reason,
        "initial_call": f"{cls.__module__}.{cls.__qualname__}.init",
        "last_message": proc.last_message,
    }


def report_crash(proc: Proc, reason: BaseException) -> None:
    """Log a crash once, as OTP's logger does, unless it is handled elsewhere.

    The record (logger ``anyotp.process``) carries ``record.crash_report`` (see
    :func:`crash_report`).  Not logged: a process that opted out (``log_crashes``),
    a failure the behaviour delivers to a handler (``_otp_crash_handled`` returns
    True: a task whose result goes to its owner).  A process that crashed because its
    own ``call`` failed (``CallExit``: the server's crash was reported already) gets
    a one-line warning, without a second traceback.
    """
    if not proc.log_crashes:
        return
    handled = getattr(proc.body, "_otp_crash_handled", None)
    if handled is not None and handled(reason):
        return
    extra = {"crash_report": crash_report(proc, reason)}
    if isinstance(reason, CallExit):
        log.warning(
            "process %r (%s) exited: its call to %r failed (%s)",
            proc.pid,
            type(proc.body).__name__,
            reason.server,
            reason.reason,
            extra=extra,
        )
        return
    log.error(
        "process %r (%s) crashed: %r",
        proc.pid,
        type(proc.body).__name__,
        reason,
        exc_info=reason,
        extra=extra,
    )


# ----------------------------------------------------------------- helpers


def is_process_class(cls: type) -> bool:
    """True if instances of ``cls`` can be spawned (an Actor or a sync server class)."""
    return hasattr(cls, "_otp_boot") or hasattr(cls, "_otp_thread_task")


#: type -> whether its instances are awaitable, learnt on first sight.  A dict lookup:
#: ``getattr(type, "__await__", None)`` on a type without it formats and raises an
#: AttributeError inside (on Python 3.11, ~2,500 instructions; bench: ping_pong, whose
#: handlers return None); inspect.isawaitable is an ABC isinstance check.
_awaitable_types: dict[type, bool] = {CoroutineType: True, type(None): False}


def is_awaitable(value: Any) -> bool:
    """True if ``value`` can be awaited (a coroutine, a future, any ``__await__``).

    Whether a type has ``__await__`` is looked up once per type and remembered (for
    up to 4096 types, then learnt again): an ``__await__`` set on a class after one of
    its instances was looked at is not seen.
    """
    t = type(value)
    known = _awaitable_types.get(t)
    if known is None:
        known = getattr(t, "__await__", None) is not None
        if len(_awaitable_types) >= 4096:  # made-up types without end: start again
            _awaitable_types.clear()
            _awaitable_types[CoroutineType] = True
        _awaitable_types[t] = known
    return known


async def maybe_await(result: Any) -> Any:
    """``await result`` if it is awaitable, else return it (sync or async callbacks)."""
    if is_awaitable(result):
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

    def __init__(self, owner: Proc) -> None:
        self._owner = owner

    @property
    def owner(self) -> Proc:
        """The process these tasks belong to."""
        return self._owner

    def start_soon(self, fn: Callable[..., Any], *args: Any, name: object = None) -> None:
        """Start ``fn(*args)`` as a child task, like ``TaskGroup.start_soon``.

        Raises:
            RuntimeError: the process is exiting or dead.
        """
        owner = self._owner
        if owner.status >= EXITING or owner.tg is None:
            raise RuntimeError(
                f"{owner!r} is not running: it cannot start child tasks (start them from "
                "init/run/handlers while the process is alive)"
            )
        if owner.tasks is None:
            owner.tasks = set()
        owner.tg.start_soon(_run_child_task, owner, fn, args, name=name)


def child_tasks(proc: Proc) -> ChildTasks:
    """``proc``'s :class:`ChildTasks` (made on first use)."""
    c = proc.child_tasks
    if c is None:
        c = proc.child_tasks = ChildTasks(proc)
    return c


async def _run_child_task(owner: Proc, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    scope = anyio.CancelScope()
    tasks = owner.tasks
    assert tasks is not None
    tasks.add(scope)
    try:
        with anyio.CancelScope(shield=True), scope:
            if owner.status >= EXITING:
                return
            await maybe_await(fn(*args))
    except ProcessExit as e:
        owner.force_exit(e.reason)
    except Exception as e:
        log.error("a child task of %r crashed it: %r", owner, e, exc_info=e)
        owner.force_exit(e)
    finally:
        tasks.discard(scope)
        if not tasks:
            w = owner.tasks_waiter
            if w is not None:
                owner.tasks_waiter = None
                w.set(None)
