"""An event loop in a background thread, for programs whose own code is threads.

A program written with threads (a CLI, a Flask app, a test) may still want async
processes: an ``anyotp.GenServer`` that holds a connection pool, a ``Registry``, a
supervision tree.  :func:`loop_thread` runs an event loop in a background thread
(anyio's blocking portal), hosts processes there, and stops them all, in reverse
start order, when the ``with`` block ends::

    with anyotp.sync.loop_thread(backend="asyncio") as lt:
        pid = lt.start(Counter, 0, name="counter")
        anyotp.sync.call(pid, "incr")        # from this plain thread, blocking
        lt.run(some_async_function, "arg")   # a coroutine function, run there

The processes it starts are owned by a host supervisor (an internal ``Supervisor``;
each child is ``TEMPORARY``: a crash is logged and the process is not restarted, as
with ``start`` in a task group).  Talk to them with
:func:`anyotp.sync.call` / :func:`anyotp.sync.cast` from any thread, or from async code
run with :meth:`LoopThread.run`.

When not to use it: in async code, start processes in a task group; a program that
is the supervision tree is better off with ``anyotp.run``.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._child_spec import ChildSpec, RestartType
from .._core import PID, is_process_class
from .._exceptions import StartError, SupervisorError
from .._supervisor import Supervisor
from ._client import event_loop_running

__all__ = ["LoopThread", "loop_thread"]

T = TypeVar("T")


class _State(enum.Enum):
    RUNNING = "running"  #: the loop runs; start() and run() work
    STOPPING = "stopping"  #: the with block ended; its processes are being stopped
    STOPPED = "stopped"  #: the loop and its thread are gone


class LoopThread:
    """An event loop running in a background thread; made by :func:`loop_thread`.

    Use it from plain (non-async) threads: :meth:`start` starts an async process
    there and returns its PID, :meth:`run` runs a coroutine function there and returns
    its result.  It has no public constructor.
    """

    __slots__ = ("_backend", "_host", "_ids", "_portal", "_state", "_tg")

    def __init__(self, portal: BlockingPortal, backend: str) -> None:
        self._portal = portal
        self._backend = backend
        self._state = _State.RUNNING
        self._ids = itertools.count(1)  # child ids, unique in the host supervisor
        self._host: PID | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def backend(self) -> str:
        """``"asyncio"`` or ``"trio"``: the event loop this thread runs."""
        return self._backend

    def _check(self, what: str) -> None:
        if self._state is not _State.RUNNING:
            raise RuntimeError(
                f"LoopThread.{what}: the loop thread is {self._state.value} (its with block "
                "ended); start a new one with anyotp.sync.loop_thread()"
            )
        if event_loop_running():
            raise RuntimeError(
                f"LoopThread.{what} blocks the calling thread, and this thread runs an event "
                "loop; from async code, await the async API instead (e.g. await "
                "Cls.start(task_group=tg))"
            )

    def start(self, cls: type[Any], *args: Any, name: Any = None, **kwargs: Any) -> PID:
        """Start a process of class ``cls`` on the loop thread; blocks until its ``init``
        returned.  Like ``await cls.start(*args, name=name, **kwargs)`` in a task group.

        The process is stopped when the ``with`` block ends, in reverse start order,
        each given its default shutdown time (5.0 s for workers, no limit for
        supervisors), as a supervisor stops its children.  If it crashes earlier, the
        crash is logged and it is not restarted.

        Args:
            cls: an async process class (``GenServer``, ``Actor``, ``Supervisor``,
                ``Agent``, ``StateMachine`` subclass) or a sync ``anyotp.sync.GenServer``.
            *args: positional arguments for its ``init``.
            name: register it under this name (a str or a via-name), like ``start``.
            **kwargs: keyword arguments for its ``init``.

        Returns:
            The new process's PID.

        Raises:
            StartError: its ``init`` raised, or ``name`` is taken or cannot be
                registered (the cause is chained).
            TypeError: ``cls`` is not a process class, or ``name`` is not a name.
            RuntimeError: the ``with`` block has ended, or called on an event-loop
                thread.
        """
        self._check("start()")
        if not (isinstance(cls, type) and is_process_class(cls)):
            raise TypeError(
                f"LoopThread.start() takes a process class (a GenServer, Actor or Supervisor "
                f"subclass, the class itself), got {cls!r}"
            )
        spec = ChildSpec(
            id=f"{cls.__name__}-{next(self._ids)}",
            actor_class=cls,
            args=args,
            kwargs=kwargs,
            restart=RestartType.TEMPORARY,
            name=name,
        )
        host = self._host
        assert host is not None
        try:
            pid: PID = self._portal.call(_start_child, host, spec)
        except SupervisorError as e:
            cause = e.__cause__
            if isinstance(cause, StartError):
                raise cause from cause.__cause__
            raise
        return pid

    def run(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``async_fn(*args)`` on the loop thread and return its result; blocks
        until it finished.  Like ``anyio.from_thread.run``.

        The coroutine runs as a task of the loop (not inside a process): it may
        ``await call(pid, ...)``, start processes in its own task group, and so on.

        Raises:
            Exception: whatever ``async_fn`` raised.
            RuntimeError: the ``with`` block has ended, or called on an event-loop
                thread.
        """
        self._check("run()")
        return self._portal.call(async_fn, *args)

    def __repr__(self) -> str:
        return f"<LoopThread {self._backend} {self._state.value}>"

    # ------------------------------------------------------------------ internals

    async def _hold(self, *, task_status: anyio.abc.TaskStatus[PID]) -> None:
        """The host task: a task group and, in it, the supervisor of started processes."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            host = await Supervisor.start(task_group=tg)
            task_status.started(host)

    def _stop_all(self) -> None:
        """Stop every hosted process (newest first) and wait until they are gone."""
        tg = self._tg
        if tg is not None:
            # Cancelling the host's task group stops the host supervisor, which stops
            # its children in reverse start order (the order of its specs), each
            # within its shutdown time.
            self._portal.call(tg.cancel_scope.cancel)


async def _start_child(host: PID, spec: ChildSpec) -> PID:
    # No timeout: start() waits for init as long as ``await cls.start()`` would.
    return await Supervisor.start_child(host, spec, timeout=None)


@contextmanager
def loop_thread(
    backend: str = "asyncio", backend_options: dict[str, Any] | None = None
) -> Iterator[LoopThread]:
    """Run an event loop in a background thread to host async processes.

    On entry a thread starts running the loop (anyio's
    ``from_thread.start_blocking_portal``); on exit every process started with
    :meth:`LoopThread.start` is stopped, in reverse start order, each with its
    shutdown time and its ``terminate``, then the loop ends and the thread is joined.
    There is no exact OTP counterpart: it plays the part of a node that a thread-first
    program starts next to itself.

    Args:
        backend: ``"asyncio"`` or ``"trio"``.
        backend_options: passed to the backend, as ``anyio.run``'s.

    Yields:
        The :class:`LoopThread`.

    Raises:
        RuntimeError: called on a thread that runs an event loop (use a task group
            there).
    """
    if event_loop_running():
        raise RuntimeError(
            "anyotp.sync.loop_thread() is for plain threads, and this thread runs an event "
            "loop: start processes in a task group instead"
        )
    with start_blocking_portal(backend, backend_options) as portal:
        lt = LoopThread(portal, backend)
        hold: Future[None]
        hold, host = portal.start_task(lt._hold)
        lt._host = host
        try:
            yield lt
        finally:
            lt._state = _State.STOPPING
            lt._stop_all()
            hold.result()  # the host task group has finished: every process is gone
            lt._state = _State.STOPPED
