"""Sync GenServers: the thread-based API of seeds 001/002, on the process core.

A sync server is a :class:`~anyotp._core._process.Process` whose body is a thread
instead of a task: it has a PID and a mailbox, exit signals, links and monitors, it can
be registered, supervised, and called from async code.  Only the loop differs:

* ``_prepare`` gives the process a *thread loop*: its ``tid`` is the server thread, its
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
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Self, TypeVar, get_args, get_origin
from typing import cast as _type_cast

import anyio

from .._core._backend import TIMEOUT, Loop, Waiter, current_loop, thread_waiter
from .._core._ids import PID
from .._core._process import (
    CALL_TAG,
    CAST_TAG,
    DEAD,
    EXITING,
    RUNNING,
    STARTING,
    From,
    Process,
    _current,
    _DeathWatch,
    _InitFailed,
)
from .._exceptions import GenServerError, GenServerTimeoutError
from ._client import call_process, clamp, require_no_event_loop, short
from ._typecheck import ANYTHING, MessageType, compile_message_type

__all__ = ["GenServer", "TypedGenServer"]

log = logging.getLogger("anyotp.sync")

_get_ident = threading.get_ident

CastMsg = TypeVar("CastMsg")
CallMsg = TypeVar("CallMsg")
State = TypeVar("State")

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
#: Returned by ``_next_message``: an exit signal set ``_exit_reason``.
_SIGNALLED: Final = _Marker("exit signal")
#: Returned by ``_next_message``: the process was killed; the thread must just end.
_GONE: Final = _Marker("killed")

#: Servers started with ``start()`` and not yet dead, in start order (for atexit).
_standalone: dict[int, TypedGenServer[Any, Any, Any]] = {}


def _noop() -> None:
    pass


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
            parent = origin._typed_alias
            if parent is None:
                continue
            mapping = dict(zip(getattr(origin, "__parameters__", ()), get_args(base), strict=False))
            params = getattr(parent, "__parameters__", ())
            if not params:
                return parent
            return parent[tuple(mapping.get(p, p) for p in params)]
    return None


class TypedGenServer(Process, Generic[CastMsg, CallMsg, State]):
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

    #: What casts and calls the server accepts (compiled from the type arguments).
    _cast_type: ClassVar[MessageType] = ANYTHING
    _call_type: ClassVar[MessageType] = ANYTHING
    #: The ``TypedGenServer[...]`` alias this class was declared with (None if none).
    _typed_alias: ClassVar[Any] = None

    # Runtime fields, set by _prepare (subclasses need not call any __init__).
    _sys: deque[tuple[Callable[..., Any], tuple[Any, ...]]]
    _dlock: threading.Lock
    _thread: threading.Thread | None = None
    _ack: Waiter | None = None
    _stop_requested: bool = False
    _finished: bool = False
    _abandoned: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        alias = _declared_alias(cls)
        if alias is None:
            return  # not (re)parameterised here: keep the inherited checks
        cls._typed_alias = alias
        cast_t, call_t, _state_t = get_args(alias)
        cls._cast_type = compile_message_type(cast_t, f"{cls.__name__} (CastMsg)")
        cls._call_type = compile_message_type(call_t, f"{cls.__name__} (CallMsg)")

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
            self._pid,
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
            self._pid,
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
        pid = self._pid
        if pid is None:
            raise GenServerError(
                f"{type(self).__name__}.pid: the server was never started, so it has no "
                "PID yet: call start() first"
            )
        return pid

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
            if self._pid is not None:
                raise GenServerError(
                    f"{name}.start() failed: the server {self._phase()}; a server instance "
                    f"runs once: create a new {name}() to start another server"
                )
            require_no_event_loop(
                f"{name}.start()",
                "start it in a worker thread (`await anyio.to_thread.run_sync(server.start)`) "
                f"or let a Supervisor start it (`ChildSpec(id=..., actor_class={name})`)",
            )
            self._prepare()
            parent = _current.get()
            if parent is not None:
                self._parent = parent._pid
        ack = thread_waiter()
        self._launch(args, kwargs, ack)
        got = ack.wait_blocking(None)
        if type(got) is _InitFailed:
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
        if self._pid is None or self._status is DEAD:
            raise GenServerError(
                f"{name}.stop() failed: the server {self._phase()}; there is nothing to stop"
            )
        if _get_ident() == self._loop.tid:  # from inside a handler: cannot wait for itself
            self._request_stop()
            return
        require_no_event_loop(
            f"{name}.stop()",
            "stop it in a worker thread: `await anyio.to_thread.run_sync(server.stop)`",
        )
        self._request_stop()
        self._wait_stopped(timeout)

    def cast(self, message: CastMsg) -> None:
        """Send ``message`` to :meth:`handle_cast` without waiting.  Like ``gen_server:cast/2``.

        Never blocks; works from any thread.

        Args:
            message: a dict for :class:`GenServer`; an instance of ``CastMsg`` for a
                :class:`TypedGenServer`.

        Raises:
            GenServerError: the message has the wrong type (the error names the type
                received), or the server is not running (the error says whether it was
                never started, is stopping or is stopped).
        """
        if self._pid is None or self._status >= EXITING or self._stop_requested:
            raise self._not_running("cast", message)
        if not self._cast_type.accepts(message):
            raise GenServerError(self._wrong_type("cast", message, self._cast_type))
        self._mbox.put((CAST_TAG, message))

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
                ``TimeoutError``).
            GenServerError: the message has the wrong type; the server is not
                running or stopped before replying; ``handle_call`` raised (chained
                as ``__cause__``; the server keeps its previous state); the call was
                made from one of the server's own handlers (it would deadlock); or the
                calling thread runs an event loop (use ``await anyotp.call(pid, ...)``).
        """
        if self._pid is None or self._status >= EXITING or self._stop_requested:
            raise self._not_running("call", message)
        if not self._call_type.accepts(message):
            raise GenServerError(self._wrong_type("call", message, self._call_type))
        return call_process(self, self._pid, message, timeout)

    def __enter__(self) -> Self:
        """Start the server (unless it is already running) and return it.

        ``with Counter() as counter:`` starts a server whose ``init`` takes no
        arguments; for one that does, ``server.start(args)`` first, then ``with
        server:`` stops it at the end of the block.
        """
        if self._pid is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server (waiting forever) unless it already stopped."""
        if self._pid is not None and self._status is not DEAD:
            self.stop()

    def __repr__(self) -> str:
        if self._pid is None:
            return f"<{type(self).__name__} not started>"
        return super().__repr__()

    # ------------------------------------------------------------ runtime: setup

    def _prepare(self) -> None:
        """Give the process its identity, mailbox and thread loop (not its thread)."""
        self._sys = deque()
        self._dlock = threading.Lock()
        loop = Loop("thread", thread_waiter, self._run_soon)
        # No thread has ident 0: until the server thread claims the loop, every
        # caller counts as foreign and its exit signals are queued for the thread.
        loop.tid = 0
        Process._setup(self, loop)

    def _setup(self, loop: Loop) -> None:
        # start_process (a supervisor) passes its event loop; a sync server runs on
        # its own thread whoever starts it.
        del loop
        self._prepare()

    def _run_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """The thread loop's ``run_soon_threadsafe``: out of band, ahead of messages."""
        self._sys.append((fn, args))
        w = self._mbox._waiter
        if w is not None:
            w.set(None)

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> None:
        pid = self.pid
        self._ack = ack
        thread = threading.Thread(
            target=self._thread_main,
            args=(args, kwargs, ack),
            name=f"anyotp.sync {type(self).__name__} {pid!r}",
            daemon=True,  # see the module docstring: kill abandons, atexit stops
        )
        self._thread = thread
        if self._owner is None:
            _standalone[pid.id] = self
        try:
            thread.start()
        except BaseException as e:  # no thread could be started
            self._unlink_all_quietly()
            self._finish(e)
            raise GenServerError(
                f"{type(self).__name__}.start() failed: could not start its thread: {e!r}"
            ) from e

    async def _main(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> None:
        """The task ``start_process`` runs: start the thread, then wait for the death.

        Owned (supervised) servers are shielded, as every owned process is: the owner
        stops them.  An unowned one is stopped when its task is cancelled.
        """
        loop = current_loop()
        assert loop is not None
        w = loop.new_waiter()
        watch = _DeathWatch(w)
        self._monitors[watch] = watch
        try:
            self._launch(args, kwargs, ack)
        except GenServerError as e:
            ack.set(_InitFailed(e.__cause__, e))
            return
        with anyio.CancelScope(shield=self._owner is not None):
            try:
                await w.wait(None)
            except anyio.get_cancelled_exc_class():
                self._force_exit("shutdown")
                with anyio.CancelScope(shield=True):
                    await self._wait_dead()
                raise

    # -------------------------------------------------------- runtime: the thread

    def _thread_main(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> None:
        self._loop.tid = _get_ident()
        _current.set(self)
        if self._killed_already():  # killed before the thread ran
            return
        try:
            state = self.init(*args, **kwargs)
        except BaseException as e:
            with self._dlock:
                if self._killed_already():  # killed in init: the killer told the starter
                    return
                self._status = EXITING
            self._unlink_all_quietly()  # the starter gets the error; links get nothing
            self._finish(e)
            ack.set(_InitFailed(e, e))
            return
        with self._dlock:
            if self._killed_already():
                return
            self._state = state
            self._status = RUNNING
        ack.set(None)
        self._serve_thread(state)

    def _next_message(self) -> Any:
        """Block for the next message; run exit signals that arrived first."""
        q = self._mbox._q
        sys_q = self._sys
        mbox = self._mbox
        while True:
            while sys_q:
                fn, args = sys_q.popleft()
                fn(*args)
            if self._finished:
                return _GONE
            if self._exit_reason is not None:
                return _SIGNALLED
            if q:
                return q.popleft()
            # The core mailbox protocol: publish the waiter, then re-check, so a
            # message (or signal) appended concurrently either is seen here or
            # releases the waiter.
            w = thread_waiter()
            mbox._waiter = w
            if q or sys_q or self._finished:
                mbox._waiter = None
                continue
            w.wait_blocking(None)
            mbox._waiter = None

    def _serve_thread(self, state: Any) -> None:
        next_message = self._next_message
        on_call = self._on_call
        on_cast = self._on_cast
        on_info = self._on_info
        reason: Any = "normal"
        try:
            while True:
                msg = next_message()
                if type(msg) is tuple:
                    n = len(msg)
                    if n == 3 and msg[0] == CALL_TAG:
                        state = on_call(msg[1], msg[2], state)
                    elif n == 2 and msg[0] == CAST_TAG:
                        state = on_cast(msg[1], state)
                    elif (
                        n == 3
                        and msg[0] == "EXIT"
                        and self.trap_exit
                        and self._parent is not None
                        and msg[1] == self._parent
                    ):
                        # OTP: a server that traps exits stops when its parent does.
                        reason = msg[2]
                        break
                    else:
                        state = on_info(msg, state)
                elif msg is _STOP:
                    break
                elif msg is _SIGNALLED:
                    reason = self._exit_reason
                    break
                elif msg is _GONE:
                    return
                else:
                    state = on_info(msg, state)
                self._state = state
                if self._finished:  # killed while the handler ran: abandon quietly
                    return
        except BaseException as e:  # KeyboardInterrupt/SystemExit in a handler
            log.error("%s %r crashed: %r", type(self).__name__, self._pid, e, exc_info=e)
            reason = e
        self._exit(reason, state)

    def _on_call(self, from_: From, message: Any, state: Any) -> Any:
        name = type(self).__name__
        if not self._call_type.accepts(message):
            from_._waiter.fail(GenServerError(self._wrong_type("call", message, self._call_type)))
            return state
        try:
            result: Any = self.handle_call(message, state)
        except Exception as e:
            err = GenServerError(
                f"{name}.handle_call({short(message)}) raised {e!r}; the server keeps "
                "running with its previous state"
            )
            err.__cause__ = e
            err.__suppress_context__ = True
            from_._waiter.fail(err)
            return state
        if isinstance(result, tuple) and len(result) == 2:
            from_.reply(result[0])
            return result[1]
        from_._waiter.fail(
            GenServerError(
                f"{name}.handle_call({short(message)}) returned {short(result)}; it must "
                "return a (reply, new_state) tuple; the server keeps running with its "
                "previous state"
            )
        )
        return state

    def _on_cast(self, message: Any, state: Any) -> Any:
        if not self._cast_type.accepts(message):
            log.warning(
                "%s %r dropped a cast: %s",
                type(self).__name__,
                self._pid,
                self._wrong_type("cast", message, self._cast_type),
            )
            return state
        try:
            return self.handle_cast(message, state)
        except Exception as e:
            log.error(
                "%s %r: handle_cast(%s) raised %r; the state is kept",
                type(self).__name__,
                self._pid,
                short(message),
                e,
                exc_info=e,
            )
            return state

    def _on_info(self, message: Any, state: Any) -> Any:
        try:
            return self.handle_info(message, state)
        except Exception as e:
            log.error(
                "%s %r: handle_info(%s) raised %r; the state is kept",
                type(self).__name__,
                self._pid,
                short(message),
                e,
                exc_info=e,
            )
            return state

    def _exit(self, reason: Any, state: Any) -> None:
        """Run ``terminate`` (unless killed) and die.  On the server thread."""
        with self._dlock:
            if self._finished:
                return
            self._status = EXITING
        if not _is_killed(reason):
            try:
                self.terminate(state)
            except Exception as e:
                log.error(
                    "%s %r: terminate() raised %r",
                    type(self).__name__,
                    self._pid,
                    e,
                    exc_info=e,
                )
        self._finish(reason)

    def _finish(self, reason: Any, abandon: bool = False) -> bool:
        """Die with ``reason`` exactly once (the thread and a killer may race).

        ``abandon`` (a kill) marks the thread as not to be joined, before anyone
        waiting for the death (``stop()``) is woken.
        """
        with self._dlock:
            if self._finished:
                return False
            self._finished = True
            self._abandoned = abandon
        pid = self._pid
        assert pid is not None
        _standalone.pop(pid.id, None)
        self._die(reason)
        return True

    # ------------------------------------------------------ runtime: exit signals

    def _signal_exit(self, sender: PID | None, reason: Any, linked: bool = False) -> None:
        if not linked and type(reason) is str and reason == "kill" and self._off_thread():
            self._kill()
            return
        super()._signal_exit(sender, reason, linked)

    def _force_exit(self, reason: Any) -> None:
        if _is_killed(reason) and self._off_thread():
            self._kill()
            return
        super()._force_exit(reason)

    def _killed_already(self) -> bool:
        # A method, not an attribute test, because another thread may set the flag
        # between two reads (mypy would otherwise narrow the second read away).
        return self._finished

    def _off_thread(self) -> bool:
        return _get_ident() != self._loop.tid

    def _kill(self) -> None:
        """Kill from another thread: the process dies now; its thread is abandoned."""
        with self._dlock:
            if self._finished:
                return
            starting = self._status is STARTING
        if starting:
            self._unlink_all_quietly()
        if self._finish("killed", abandon=True):
            ack = self._ack
            if starting and ack is not None:
                ack.set(_InitFailed("killed", None))
            self._run_soon(_noop)  # wake an idle thread so that it ends

    # ---------------------------------------------------------- runtime: helpers

    def _request_stop(self) -> None:
        if not self._stop_requested:
            self._stop_requested = True
            self._mbox.put(_STOP)

    def _wait_stopped(self, timeout: float | None) -> None:
        """Block until the process is dead and its thread joined."""
        deadline = None if timeout is None else time.monotonic() + timeout
        w = thread_waiter()
        watch = _DeathWatch(w)
        self._monitors[watch] = watch
        if self._status is DEAD:
            self._monitors.pop(watch, None)
        elif w.wait_blocking(clamp(timeout)) is TIMEOUT:
            self._monitors.pop(watch, None)
            name = type(self).__name__
            raise GenServerTimeoutError(
                f"{name}.stop(timeout={timeout}): the server did not stop within "
                f"{timeout} s (a handler or terminate is still running); the stop "
                "request stands: it stops once it gets to it"
            )
        thread = self._thread
        if thread is not None and not self._abandoned and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _phase(self) -> str:
        """The lifecycle in words, for misuse messages: "is running as <PID 0.3>"."""
        if self._pid is None:
            return "was never started"
        status = self._status
        if status is STARTING:
            return "is starting (init has not returned yet)"
        if status is RUNNING:
            if self._stop_requested:
                return "is stopping (stop() was called)"
            return f"is already running as {self._pid!r}"
        if status is EXITING:
            return "is stopping (terminate is running)"
        return f"is stopped (exit reason {self.exit_reason!r})"

    def _not_running(self, what: str, message: Any) -> GenServerError:
        name = type(self).__name__
        if self._pid is None:
            hint = "call start() first"
        elif self._status is DEAD:
            hint = f"create and start a new {name}()"
        else:
            hint = "it takes no new messages"
        return GenServerError(
            f"{what}({short(message)}) to {name} failed: the server {self._phase()}; {hint}"
        )

    def _wrong_type(self, what: str, message: Any, expected: MessageType) -> str:
        return (
            f"{what}() to the sync GenServer {type(self).__name__} takes "
            f"{expected.description}, "
            f"got {type(message).__name__} {short(message)}"
        )


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
        if server._status is DEAD:
            continue
        try:
            server._request_stop()
            server._wait_stopped(AT_EXIT_STOP_TIMEOUT)
        except GenServerTimeoutError:
            log.warning(
                "%r did not stop within %s s at interpreter exit; abandoning its thread",
                server,
                AT_EXIT_STOP_TIMEOUT,
            )


atexit.register(_stop_at_exit)
