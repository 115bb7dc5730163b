"""Sync GenServers: the thread-based API of seeds 001/002, on the process core.

A sync server is a process of the core (a :class:`~anyotp._core.Proc`, the process
control block, that the server object points to as ``_otp_pcb``) whose body is a
thread instead of a task: it has a PID and a mailbox, exit signals, links and
monitors, it can be registered, supervised, and called from async code.  Only the
loop differs:

* ``_otp_new_loop`` gives the process a *thread loop*: its ``tid`` is the server thread, its
  waiters are locks, and its ``run_soon_threadsafe`` (which the core uses to deliver
  exit signals from other threads) appends to an out-of-band queue that the thread
  drains before every message -- so an exit signal overtakes queued messages, as in
  OTP -- and wakes the thread.
* The thread blocks on a lock published as the mailbox's waiter (the core's protocol:
  publish, re-check, sleep), so a message costs one lock release, never a poll.
* ``stop()`` puts a marker *in* the mailbox, so calls queued before it are answered
  first; calls that arrive after it fail when the process dies (their ``From`` is a
  monitor).
* A thread cannot be interrupted.  A non-kill exit signal is acted on when the
  current handler returns.  A kill from another thread ends the *process* at once
  (reason ``"killed"``: links, monitors, callers and supervisors are told, the name
  is released) and abandons the thread: when its handler returns it sees it is dead
  and ends without running ``terminate`` or touching any message.  Threads are
  daemons, so an abandoned thread stuck forever does not keep the interpreter alive;
  an ``atexit`` hook stops (with ``terminate``) the servers still running.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Self, TypeVar, get_args, get_origin
from typing import cast as _type_cast

import anyio

from .._actor import Callbacks, check_callbacks
from .._core import (
    CALL,
    CAST,
    DEAD,
    EXITING,
    PARENT_EXIT,
    PID,
    RUNNING,
    STARTING,
    SYSTEM,
    DeathWatch,
    From,
    InitFailed,
    Loop,
    Proc,
    ProcessExit,
    Waiter,
    cast_nowait,
    current_loop,
    current_process,
    decode,
    new_thread_loop,
    on_exit,
    set_current_process,
    stop_blocking,
    thread_waiter,
)
from .._exceptions import GenServerError, GenServerTimeoutError
from .._genserver import wrong_kind
from ._client import blocking_call, clamp, require_no_event_loop, short
from ._typecheck import ANYTHING, MessageType, compile_message_type

__all__ = ["GenServer", "TypedGenServer"]

log = logging.getLogger("anyotp.sync")

_get_ident = threading.get_ident

CastMsg = TypeVar("CastMsg")
CallMsg = TypeVar("CallMsg")
State = TypeVar("State")

_SYNC_CALLBACKS: Callbacks = {
    "init": ("*args", False),
    "handle_call": ("message, state", False),
    "handle_cast": ("message, state", False),
    "handle_info": ("message, state", False),
    "terminate": ("state", False),
}

#: Seconds the interpreter-exit hook gives each server still running to stop.
AT_EXIT_STOP_TIMEOUT: Final = 5.0


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<sync server {self.name}>"


#: Put in the mailbox by ``stop()``: everything queued before it is handled first.
_STOP: Final = _Marker("stop request")
#: Returned by ``_otp_next_message``: an exit signal set ``pending_exit``.
_SIGNALLED: Final = _Marker("exit signal")
#: Returned by ``_otp_next_message``: the process was killed; the thread must just end.
_GONE: Final = _Marker("killed")

#: Servers started with ``start()`` and not yet dead, in start order (for atexit).
_standalone: dict[int, TypedGenServer[Any, Any, Any]] = {}


def _is_killed(reason: Any) -> bool:
    return type(reason) is str and reason == "killed"


def _declared_alias(cls: type) -> Any:
    """The ``TypedGenServer[Cast, Call, State]`` alias ``cls`` declares, with the
    type variables of a generic parent substituted (``GenServer[int]`` ->
    ``TypedGenServer[dict[str, Any], dict[str, Any], int]``); None if ``cls`` does not
    parameterise a TypedGenServer in its own bases."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if origin is TypedGenServer:  # defined by the time any subclass exists
            return base
        if isinstance(origin, type) and issubclass(origin, TypedGenServer):
            parent = origin._otp_typed_alias
            if parent is None:
                continue
            mapping = dict(zip(getattr(origin, "__parameters__", ()), get_args(base), strict=False))
            params = getattr(parent, "__parameters__", ())
            if not params:
                return parent
            return parent[tuple(mapping.get(p, p) for p in params)]
    return None


class TypedGenServer(Generic[CastMsg, CallMsg, State]):
    """A thread-based GenServer whose cast and call messages have declared types.

    Subclass ``TypedGenServer[CastMsg, CallMsg, State]`` and implement the callbacks;
    a cast or call whose message is not an instance of ``CastMsg`` / ``CallMsg``
    (unions included: ``Increment | Decrement``) raises :class:`GenServerError` in the
    client, before it reaches the server.  Like ``gen_server``, but each server's
    callbacks run on the server's own thread, one message at a time::

        class Counter(TypedGenServer[Increment, GetCount, int]):
            def init(self) -> int:
                return 0

            def handle_cast(self, message: Increment, state: int) -> int:
                return state + 1

            def handle_call(self, message: GetCount, state: int) -> tuple[int, int]:
                return state, state

        with Counter() as counter:
            counter.cast(Increment())
            assert counter.call(GetCount()) == 1

    A server is also a process: :attr:`pid` can be linked, monitored, registered and
    called from async code (``await anyotp.call(server.pid, ...)``), and the class can
    be the ``actor_class`` of a :class:`~anyotp.ChildSpec`.

    Attributes:
        trap_exit: when True, exit signals from linked processes arrive in
            :meth:`handle_info` as ``("EXIT", pid, reason)`` instead of stopping the
            server (``"kill"`` excepted); like ``process_flag(trap_exit, true)``.
    """

    trap_exit: bool = False

    #: What casts and calls the server accepts (compiled from the type arguments).
    _otp_cast_type: ClassVar[MessageType] = ANYTHING
    _otp_call_type: ClassVar[MessageType] = ANYTHING
    #: The ``TypedGenServer[...]`` alias this class was declared with (None if none).
    _otp_typed_alias: ClassVar[Any] = None

    # Runtime fields: the process control block and what the thread runner adds
    # (class defaults, so subclasses need not call any __init__).  Reserved names:
    # everything that starts with ``_otp_``.
    _otp_pcb: Proc | None = None
    _otp_lock: threading.Lock | None = None
    _otp_ack: Waiter | None = None
    _otp_stop_requested: bool = False
    _otp_abandoned: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_callbacks(cls, _SYNC_CALLBACKS, " (for async callbacks, use anyotp.GenServer)")
        alias = _declared_alias(cls)
        if alias is None:
            return  # not (re)parameterised here: keep the inherited checks
        cls._otp_typed_alias = alias
        cast_t, call_t, _state_t = get_args(alias)
        cls._otp_cast_type = compile_message_type(cast_t, f"{cls.__name__} (CastMsg)")
        cls._otp_call_type = compile_message_type(call_t, f"{cls.__name__} (CallMsg)")

    # ------------------------------------------------------------------ callbacks

    def init(self, *args: Any, **kwargs: Any) -> State:
        """Return the initial state; gets the arguments given to :meth:`start`.

        Runs on the server's thread.  Raising here makes :meth:`start` raise
        :class:`GenServerError` with this exception chained; the server never runs.
        Like ``Module:init/1``.  The default returns None.
        """
        return _type_cast(State, None)

    def handle_cast(self, message: CastMsg, state: State) -> State:
        """Handle a cast; return the new state.  Like ``Module:handle_cast/2``.

        An exception raised here is logged with its traceback and the state is kept.
        The default (reached with ``super().handle_cast(message, state)`` for messages
        a subclass does not handle) logs a warning and keeps the state.
        """
        log.warning(
            "%s %r received a cast it does not handle: %s; the state is kept",
            type(self).__name__,
            self._otp_pcb,
            short(message),
        )
        return state

    def handle_call(self, message: CallMsg, state: State) -> tuple[Any, State]:
        """Answer a call; return ``(reply, new_state)``.  Like ``Module:handle_call/3``.

        An exception raised here makes the caller's ``call`` raise
        :class:`GenServerError` with the exception chained; the server keeps running
        with its previous state.  The default raises ``NotImplementedError``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} received call {short(message)} but does not "
            "implement handle_call(self, message, state)"
        )

    def handle_info(self, message: Any, state: State) -> State:
        """Handle any other message; return the new state.  Like ``handle_info/2``.

        Other messages are what ``anyotp.send`` delivers, ``("DOWN", ref, "process",
        pid, reason)`` from monitors this server set up, and ``("EXIT", pid, reason)``
        from links when :attr:`trap_exit` is True.  An exception raised here is logged
        and the state kept.  The default logs a warning and keeps the state.
        """
        log.warning(
            "%s %r received an unexpected message: %s; the state is kept",
            type(self).__name__,
            self._otp_pcb,
            short(message),
        )
        return state

    def terminate(self, state: State) -> None:
        """Clean up when the server stops, with its last state.  Like ``terminate/2``.

        Runs on the server's thread after :meth:`stop` (once every call queued before
        it was answered), after an exit signal (a supervisor's shutdown, a crashed
        link), and at interpreter exit; not when the server is killed.  An exception
        raised here is logged.
        """

    # -------------------------------------------------------------- client API

    @property
    def pid(self) -> PID:
        """The server's PID: ``anyotp.sync.call(server.pid, ...)``, ``anyotp.call``,
        ``monitor``, ``register``, ``link`` all take it.

        Raises:
            GenServerError: the server was never started (it has no PID yet).
        """
        pcb = self._otp_pcb
        if pcb is None:
            raise GenServerError(
                f"{type(self).__name__}.pid: the server was never started, so it has no "
                "PID yet: call start() first"
            )
        return pcb.pid

    @property
    def exit_reason(self) -> Any:
        """The reason the server stopped with, once stopped (None before)."""
        pcb = self._otp_pcb
        return None if pcb is None or pcb.status is not DEAD else pcb.exit_reason

    def start(self, *args: Any, **kwargs: Any) -> None:
        """Start the server: run ``init(*args, **kwargs)`` on a new thread, wait for it.

        Like ``gen_server:start/3``: when ``start`` returns, ``init`` has returned and
        the server handles messages.  A server instance runs once; to run it again,
        create a new instance.

        Args:
            *args: passed to :meth:`init`.
            **kwargs: passed to :meth:`init`.

        Raises:
            GenServerError: the server was already started (the message says whether
                it is running, stopping or stopped); ``init`` raised (chained as
                ``__cause__``; the server never ran); or the calling thread runs an
                event loop (start it from a worker thread, or supervise it).
        """
        name = type(self).__name__
        with _start_lock:
            if self._otp_pcb is not None:
                raise GenServerError(
                    f"{name}.start() failed: the server {self._otp_phase()}; a server instance "
                    f"runs once: create a new {name}() to start another server"
                )
            require_no_event_loop(
                f"{name}.start()",
                "start it in a worker thread (`await anyio.to_thread.run_sync(server.start)`) "
                f"or let a Supervisor start it (`ChildSpec(id=..., actor_class={name})`)",
            )
            proc = self._otp_prepare(self._otp_new_loop())
            parent = current_process()
            if parent is not None:
                proc.parent = parent.pid
        ack = thread_waiter()
        self._otp_launch(proc, args, kwargs, ack)
        got = ack.wait_blocking(None)
        if type(got) is InitFailed:
            if got.exc is None:
                raise GenServerError(
                    f"{name}.start() failed: the server exited with reason {got.reason!r} "
                    "before init returned"
                )
            raise GenServerError(
                f"{name}.start() failed: init raised {got.exc!r}; the server is not running"
            ) from got.exc

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server and wait until it has stopped.  Like ``gen_server:stop/3``.

        Every call already queued is answered first (with its reply, or with
        :class:`GenServerError` if the server stops before reaching it), then
        :meth:`terminate` runs, then the server's thread is joined.  Casts queued
        after the stop request are dropped.

        Called from one of the server's own handlers, it requests the stop and
        returns at once (the server stops after the messages queued so far).  If the
        server is killed while ``stop`` waits, ``stop`` returns once it is dead, without
        joining the abandoned thread.

        Args:
            timeout: seconds to wait; ``None`` (the default) waits forever.

        Raises:
            GenServerTimeoutError: the server did not stop within ``timeout`` seconds
                (also a ``TimeoutError``): a handler or ``terminate`` is still running.
                The stop request stands.
            GenServerError: the server is not running (never started, or already
                stopped), or the calling thread runs an event loop.
        """
        name = type(self).__name__
        clamp(timeout, lambda: f"{name}.stop()")  # refused before anything is done
        proc = self._otp_pcb
        if proc is None or proc.status is DEAD:
            raise GenServerError(
                f"{name}.stop() failed: the server {self._otp_phase()}; there is nothing to stop"
            )
        if _get_ident() == proc.loop.tid:  # from inside a handler: cannot wait for itself
            self._otp_request_stop()
            return
        require_no_event_loop(
            f"{name}.stop()",
            "stop it in a worker thread: `await anyio.to_thread.run_sync(server.stop)`",
        )
        self._otp_request_stop()
        self._otp_wait_stopped(timeout)

    def cast(self, message: CastMsg) -> None:
        """Send ``message`` to :meth:`handle_cast` without waiting.  Like ``gen_server:cast/2``.

        Never blocks; works from any thread.

        Args:
            message: a dict for :class:`GenServer`; an instance of ``CastMsg`` for a
                :class:`TypedGenServer`.

        Raises:
            GenServerError: the message has the wrong type (the error names the type
                received, and suggests ``Inc()`` when given the class ``Inc``), or the
                server is not running (the error says whether it was never started, is
                stopping or is stopped).
        """
        proc = self._otp_pcb
        if proc is None or proc.status >= EXITING or self._otp_stop_requested:
            raise self._otp_not_running("cast", message)
        if not self._otp_cast_type.accepts(message):
            raise GenServerError(self._otp_wrong_type("cast", message, self._otp_cast_type))
        cast_nowait(proc.pid, message)

    def call(self, message: CallMsg, timeout: float | None = None) -> Any:
        """Send ``message`` to :meth:`handle_call` and block for the reply.

        Like ``gen_server:call/3``.

        Args:
            message: a dict for :class:`GenServer`; an instance of ``CallMsg`` for a
                :class:`TypedGenServer`.
            timeout: seconds to wait for the reply; ``None`` (the default) waits
                forever.  A reply that comes later is discarded.

        Returns:
            The reply returned by ``handle_call``.

        Raises:
            GenServerTimeoutError: no reply within ``timeout`` seconds (also a
                ``TimeoutError`` and a ``CallTimeout``).
            GenServerError: the message has the wrong type; the server is not
                running or stopped before replying (also a ``CallNoProc`` / ``CallExit``);
                ``handle_call`` raised (chained as ``__cause__``; the server keeps its
                previous state); the call was made from one of the server's own
                handlers (it would deadlock); or the calling thread runs an event loop
                (use ``await anyotp.call(pid, ...)``).
        """
        proc = self._otp_pcb
        if proc is None or proc.status >= EXITING or self._otp_stop_requested:
            raise self._otp_not_running("call", message)
        if not self._otp_call_type.accepts(message):
            raise GenServerError(self._otp_wrong_type("call", message, self._otp_call_type))
        return blocking_call(proc.pid, message, timeout, type(self).__name__)

    def __enter__(self) -> Self:
        """Start the server (unless it is already running) and return it.

        ``with Counter() as counter:`` starts a server whose ``init`` takes no
        arguments; for one that does, ``server.start(args)`` first, then ``with
        server:`` stops it at the end of the block.
        """
        if self._otp_pcb is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server (waiting forever) unless it already stopped."""
        pcb = self._otp_pcb
        if pcb is not None and pcb.status is not DEAD:
            self.stop()

    def __repr__(self) -> str:
        pcb = self._otp_pcb
        if pcb is None:
            return f"<{type(self).__name__} not started>"
        return repr(pcb)

    # ------------------------------------------------------------ runtime: setup

    def _otp_new_loop(self) -> Loop:
        """The runtime hook that makes this a thread process: its own thread loop."""
        return new_thread_loop()

    def _otp_prepare(self, loop: Loop) -> Proc:
        """Give a standalone server its control block (not its thread)."""
        proc = Proc(self, loop)
        self._otp_pcb = proc
        self._otp_lock = threading.Lock()
        return proc

    def _otp_launch(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> None:
        if self._otp_lock is None:
            self._otp_lock = threading.Lock()
        self._otp_ack = ack
        thread = threading.Thread(
            target=self._otp_thread_main,
            args=(proc, args, kwargs, ack),
            name=f"anyotp.sync {type(self).__name__} {proc.pid!r}",
            daemon=True,  # see the module docstring: kill abandons, atexit stops
        )
        proc.thread = thread
        if proc.owner is None:
            _standalone[proc.pid.id] = self
        try:
            thread.start()
        except BaseException as e:  # no thread could be started
            proc.unlink_all_quietly()
            self._otp_finish(proc, e)
            raise GenServerError(
                f"{type(self).__name__}.start() failed: could not start its thread: {e!r}"
            ) from e

    async def _otp_thread_task(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> None:
        """The task ``spawn`` runs for a thread process: start the thread, then wait
        for the death.

        Owned (supervised) servers are shielded, as every owned process is: the owner
        stops them.  An unowned one is stopped when its task is cancelled.
        """
        loop = current_loop()
        assert loop is not None
        watch = DeathWatch(loop.new_waiter())
        on_exit(proc, watch)
        try:
            self._otp_launch(proc, args, kwargs, ack)
        except GenServerError as e:
            ack.set(InitFailed(e.__cause__, e))
            return
        with anyio.CancelScope(shield=proc.owner is not None):
            try:
                await watch.waiter.wait(None)
            except anyio.get_cancelled_exc_class():
                proc.force_exit("shutdown")
                with anyio.CancelScope(shield=True):
                    watch.waiter = loop.new_waiter()
                    if proc.status is not DEAD:
                        await watch.waiter.wait(None)
                raise

    # -------------------------------------------------------- runtime: the thread

    def _otp_thread_main(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> None:
        proc.loop.tid = _get_ident()
        set_current_process(proc)
        lock = self._otp_lock
        assert lock is not None
        if _finished(proc):  # killed before the thread ran
            return
        try:
            state = self.init(*args, **kwargs)
        except BaseException as e:
            with lock:
                if _finished(proc):  # killed in init: the killer told the starter
                    return
                proc.status = EXITING
            proc.unlink_all_quietly()  # the starter gets the error; links get nothing
            if isinstance(e, ProcessExit):  # exit_process(self_pid(), reason) in init
                self._otp_finish(proc, e.reason)
                ack.set(InitFailed(e.reason, None))
                return
            self._otp_finish(proc, e)
            ack.set(InitFailed(e, e))
            return
        with lock:
            if _finished(proc):
                return
            proc.state = state
            proc.status = RUNNING
        ack.set(None)
        self._otp_serve_thread(proc, state)

    def _otp_next_message(self, proc: Proc) -> Any:
        """Block for the next message; run exit signals that arrived first."""
        mbox = proc.mbox
        q = mbox.queue
        calls = proc.loop.calls
        assert calls is not None
        while True:
            while calls:
                fn, args = calls.popleft()
                fn(*args)
            if proc.finished:
                return _GONE
            if proc.pending_exit is not None:
                return _SIGNALLED
            if q:
                proc.reductions += 1
                mbox.taken += 1  # invalidates receive marks (Mailbox.mark)
                return q.popleft()
            # The core mailbox protocol: publish the waiter, then re-check, so a
            # message (or signal) appended concurrently either is seen here or
            # releases the waiter.
            w = thread_waiter()
            mbox.waiter = w
            if q or calls or proc.finished:
                mbox.waiter = None
                continue
            w.wait_blocking(None)
            mbox.waiter = None

    def _otp_serve_thread(self, proc: Proc, state: Any) -> None:
        next_message = self._otp_next_message
        on_call = self._otp_on_call
        on_cast = self._otp_on_cast
        on_info = self._otp_on_info
        reason: Any = "normal"
        try:
            while True:
                msg = next_message(proc)
                if msg is _STOP:
                    break
                if msg is _SIGNALLED:
                    reason = proc.pending_exit
                    break
                if msg is _GONE:
                    return
                proc.last_message = msg  # for a crash report
                kind = decode(msg, proc.parent, self.trap_exit)
                if kind == CALL:
                    state = on_call(msg[1], msg[2], state)
                elif kind == CAST:
                    state = on_cast(msg[1], state)
                elif kind == PARENT_EXIT:
                    # OTP: a server that traps exits stops when its parent does.
                    reason = msg[2]
                    break
                elif kind == SYSTEM:
                    state = self._otp_system(msg[1], msg[2], state)
                else:
                    state = on_info(msg, state)
                proc.state = state
                if proc.finished:  # killed while the handler ran: abandon quietly
                    return
        except ProcessExit as e:  # exit_process(self_pid(), reason) in a handler
            reason = e.reason
        except BaseException as e:  # KeyboardInterrupt/SystemExit in a handler
            log.error("%s %r crashed: %r", type(self).__name__, proc.pid, e, exc_info=e)
            reason = e
        self._otp_exit(proc, reason, state)

    def _otp_system(self, from_: From, request: Any, state: Any) -> Any:
        """System requests (``get_state``/``replace_state``) between messages."""
        op = request[0]
        if op == "get_state":
            from_.reply(state)
        elif op == "replace_state":
            try:
                state = request[1](state)
            except Exception as e:  # like sys:replace_state/2: the caller gets the error
                from_.fail(e)
                return state
            from_.reply(state)
        else:
            from_.fail(wrong_kind(self, request))
        return state

    def _otp_on_call(self, from_: From, message: Any, state: Any) -> Any:
        name = type(self).__name__
        if not self._otp_call_type.accepts(message):
            from_.fail(GenServerError(self._otp_wrong_type("call", message, self._otp_call_type)))
            return state
        try:
            result: Any = self.handle_call(message, state)
        except ProcessExit:
            raise
        except Exception as e:
            err = GenServerError(
                f"{name}.handle_call({short(message)}) raised {e!r}; the server keeps "
                "running with its previous state"
            )
            err.__cause__ = e
            err.__suppress_context__ = True
            from_.fail(err)
            return state
        if isinstance(result, tuple) and len(result) == 2:
            from_.reply(result[0])
            return result[1]
        from_.fail(
            GenServerError(
                f"{name}.handle_call({short(message)}) returned {short(result)}; it must "
                "return a (reply, new_state) tuple; the server keeps running with its "
                "previous state"
            )
        )
        return state

    def _otp_on_cast(self, message: Any, state: Any) -> Any:
        if not self._otp_cast_type.accepts(message):
            log.warning(
                "%s %r dropped a cast: %s",
                type(self).__name__,
                self._otp_pcb,
                self._otp_wrong_type("cast", message, self._otp_cast_type),
            )
            return state
        try:
            return self.handle_cast(message, state)
        except Exception as e:
            log.error(
                "%s %r: handle_cast(%s) raised %r; the state is kept",
                type(self).__name__,
                self._otp_pcb,
                short(message),
                e,
                exc_info=e,
            )
            return state

    def _otp_on_info(self, message: Any, state: Any) -> Any:
        try:
            return self.handle_info(message, state)
        except Exception as e:
            log.error(
                "%s %r: handle_info(%s) raised %r; the state is kept",
                type(self).__name__,
                self._otp_pcb,
                short(message),
                e,
                exc_info=e,
            )
            return state

    def _otp_exit(self, proc: Proc, reason: Any, state: Any) -> None:
        """Run ``terminate`` (unless killed) and die.  On the server thread."""
        lock = self._otp_lock
        assert lock is not None
        with lock:
            if proc.finished:
                return
            proc.status = EXITING
        if not _is_killed(reason):
            try:
                self.terminate(state)
            except ProcessExit as e:  # exit_process(self_pid(), r) in terminate: exit with r
                reason = e.reason
            except Exception as e:
                log.error(
                    "%s %r: terminate() raised %r", type(self).__name__, proc.pid, e, exc_info=e
                )
        self._otp_finish(proc, reason)

    def _otp_finish(self, proc: Proc, reason: Any, abandon: bool = False) -> bool:
        """Die with ``reason`` exactly once (the thread and a killer may race).

        ``abandon`` (a kill) marks the thread as not to be joined, before anyone
        waiting for the death (``stop()``) is woken.
        """
        lock = self._otp_lock
        assert lock is not None
        with lock:
            if proc.finished:
                return False
            proc.finished = True
            self._otp_abandoned = abandon
        _standalone.pop(proc.pid.id, None)
        proc.die(reason)
        return True

    # ------------------------------------------------------ runtime: exit signals

    def _otp_kill(self) -> None:
        """Runtime hook: killed from another thread.  The process dies now; its
        thread, which cannot be interrupted, is abandoned."""
        proc = self._otp_pcb
        lock = self._otp_lock
        if proc is None or lock is None:
            return
        with lock:
            if proc.finished:
                return
            starting = proc.status is STARTING
        if starting:
            proc.unlink_all_quietly()
        if self._otp_finish(proc, "killed", abandon=True):
            ack = self._otp_ack
            if starting and ack is not None:
                ack.set(InitFailed("killed", None))
            proc.mbox.wake()  # wake an idle thread so that it ends

    # ---------------------------------------------------------- runtime: helpers

    def _otp_request_stop(self) -> None:
        if not self._otp_stop_requested:
            self._otp_stop_requested = True
            proc = self._otp_pcb
            assert proc is not None
            proc.mbox.put(_STOP)

    def _otp_wait_stopped(self, timeout: float | None) -> None:
        """Block until the process is dead and its thread joined."""
        proc = self._otp_pcb
        assert proc is not None
        wait = clamp(timeout)  # checked by stop() already
        deadline = None if wait is None else time.monotonic() + wait
        if not stop_blocking(proc, None, wait):
            name = type(self).__name__
            raise GenServerTimeoutError(
                f"{name}.stop(timeout={timeout}): the server did not stop within "
                f"{timeout} s (a handler or terminate is still running); the stop "
                "request stands: it stops once it gets to it",
                server=proc.pid,
                timeout=timeout,
                reason="timeout",
            )
        thread = proc.thread
        if (
            thread is not None
            and not self._otp_abandoned
            and thread is not threading.current_thread()
        ):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _otp_phase(self) -> str:
        """The lifecycle in words, for misuse messages: "is running as <PID 0.3>"."""
        proc = self._otp_pcb
        if proc is None:
            return "was never started"
        status = proc.status
        if status is STARTING:
            return "is starting (init has not returned yet)"
        if status is RUNNING:
            if self._otp_stop_requested:
                return "is stopping (stop() was called)"
            return f"is already running as {proc.pid!r}"
        if status is EXITING:
            return "is stopping (terminate is running)"
        return f"is stopped (exit reason {proc.exit_reason!r})"

    def _otp_not_running(self, what: str, message: Any) -> GenServerError:
        name = type(self).__name__
        proc = self._otp_pcb
        if proc is None:
            hint = "call start() first"
        elif proc.status is DEAD:
            hint = f"create and start a new {name}()"
        else:
            hint = "it takes no new messages"
        return GenServerError(
            f"{what}({short(message)}) to {name} failed: the server {self._otp_phase()}; {hint}"
        )

    def _otp_wrong_type(self, what: str, message: Any, expected: MessageType) -> str:
        hint = ""
        if isinstance(message, type):
            hint = f" (a class, not an instance: did you mean `{message.__name__}()`?)"
        return (
            f"{what}() to the sync GenServer {type(self).__name__} takes "
            f"{expected.description}, "
            f"got {type(message).__name__} {short(message)}{hint}"
        )


def _finished(proc: Proc) -> bool:
    # A function, not an attribute test, because another thread may set the flag
    # between two reads (mypy would otherwise narrow the second read away).
    return proc.finished


class _OnInstances:
    """Wraps a method so that calling it on the class (``Counter.start()``) raises an
    error naming that class and the fix, instead of Python's "missing self"."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is not None:
            return self.fn.__get__(obj, cls)
        name = getattr(cls, "__name__", "GenServer")
        method = self.fn.__name__

        def on_class(*args: Any, **kwargs: Any) -> Any:
            raise GenServerError(
                f"{name}.{method}() was called on the class {name}, not on a server: "
                f"create one and call it there: `server = {name}(); server.{method}(...)`"
            )

        return on_class


for _method in ("start", "stop", "cast", "call"):
    setattr(TypedGenServer, _method, _OnInstances(getattr(TypedGenServer, _method)))


class GenServer(TypedGenServer[dict[str, Any], dict[str, Any], State]):
    """A thread-based GenServer whose messages are dicts: seed 001's ``GenServer``.

    Subclass ``GenServer[State]`` and implement ``init``, ``handle_cast``,
    ``handle_call`` (and optionally ``terminate``, ``handle_info``)::

        class Counter(GenServer[int]):
            def init(self) -> int:
                return 0

            def handle_cast(self, message: dict, state: int) -> int:
                if message.get("action") == "increment":
                    return state + 1
                return super().handle_cast(message, state)

            def handle_call(self, message: dict, state: int) -> tuple[int, int]:
                return state, state

        counter = Counter()
        counter.start()
        counter.cast({"action": "increment"})
        assert counter.call({"action": "get"}) == 1
        counter.stop()

    A cast or call whose message is not a dict raises :class:`GenServerError` naming
    the type it got.  Everything else is :class:`TypedGenServer`'s.
    """


_start_lock = threading.Lock()


def _stop_at_exit() -> None:
    """Interpreter exit: stop the servers started with ``start()`` that still run,
    newest first, each given ``AT_EXIT_STOP_TIMEOUT`` seconds (then abandoned)."""
    for server in reversed(list(_standalone.values())):
        pcb = server._otp_pcb
        if pcb is None or pcb.status is DEAD:
            continue
        try:
            server._otp_request_stop()
            server._otp_wait_stopped(AT_EXIT_STOP_TIMEOUT)
        except GenServerTimeoutError:
            log.warning(
                "%r did not stop within %s s at interpreter exit; abandoning its thread",
                server,
                AT_EXIT_STOP_TIMEOUT,
            )


atexit.register(_stop_at_exit)
