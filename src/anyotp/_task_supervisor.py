"""TaskSupervisor and Elixir's Task API: async/await, yield, shutdown, async_stream.

What it is
    Elixir's ``Task`` runs one function in a process and sends the result back to the
    process that started it, as a message tagged with a monitor reference.  Here:
    :meth:`Task.async_ <anyotp.Task.async_>` starts such a task (linked to and owned
    by the caller), :meth:`Task.await_ <anyotp.Task.await_>` receives its result.
    :class:`TaskSupervisor` (Elixir's ``Task.Supervisor``) is a
    :class:`~anyotp.DynamicSupervisor` for tasks: ``async_nolink`` runs a task under it,
    not linked to the caller, so a crash comes back as an error instead of killing
    the caller.  :meth:`Task.async_stream <anyotp.Task.async_stream>` maps a function
    over an iterable with bounded concurrency.

Example::

    class Server(GenServer):
        async def handle_call(self, request, from_, state):
            task = await Task.async_(fetch, request)     # runs concurrently
            return await Task.await_(task, timeout=2.0), state

Python names
    ``async`` and ``await`` are keywords: the functions are ``Task.async_`` and
    ``Task.await_`` (and ``Task.yield_``); ``getattr(Task, "async")`` and
    ``getattr(Task, "await")`` are aliases, and so is ``getattr(TaskSupervisor,
    "async")`` for ``TaskSupervisor.async_``.

Messages
    A task started by ``async_``/``async_nolink`` sends ``(task.ref, result)`` to its
    owner and exits ``"normal"``; the owner monitors it with ``task.ref``, so a task
    that fails produces ``("DOWN", task.ref, "process", pid, reason)``.  A GenServer may
    handle both in ``handle_info`` instead of awaiting (call
    ``demonitor(ref, flush=True)`` after the result), as in Elixir.

Timeouts
    ``await_`` raises :class:`~anyotp.TaskTimeout` and leaves the task running (Elixir
    exits the caller); ``yield_`` returns None.  Both take seconds; None waits forever.

When not to use it
    For work whose result nobody awaits, use ``TaskSupervisor.start_child``; for a
    long-lived worker with state, a GenServer under a supervisor.
"""

from __future__ import annotations

import functools
import os
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal

import anyio

from ._core._backend import TIMEOUT, current_loop
from ._core._ids import PID, Ref
from ._core._process import (
    DEAD,
    Process,
    Shutdown,
    Waiter,
    _current,
    _DeathWatch,
    _Exit,
    _maybe_await,
    _Monitor,
    log,
    start_process,
)
from ._dynamic_supervisor import DynamicSupervisor
from ._exceptions import ExitError, NotInProcess, ReceiveTimeout, TaskTimeout
from ._supervisor import ChildSpec, RestartType
from ._task import _PENDING, Task, TaskHandle

__all__ = ["TaskStream", "TaskSupervisor"]

Outcome = tuple[Literal["ok", "exit"], Any]


# ----------------------------------------------------------------- the task process


class _Hook:
    """Filled in by a task as it starts (before ``start`` returns): its process."""

    __slots__ = ("proc",)

    def __init__(self) -> None:
        self.proc: _AsyncTask | None = None

    def attach(self, proc: _AsyncTask) -> bool:
        """Called by the starting task; False tells it to exit (nobody wants it)."""
        self.proc = proc
        return True


class _AsyncTask(Task):
    """The process behind ``Task.async_``, ``async_nolink``, ``async_stream`` and
    ``TaskSupervisor.start_child``: runs ``func()``, sends ``(ref, result)`` to
    ``reply_to``.  Started with ``args=(func, reply_to, ref, link_to, hook)``."""

    _reply_to: Process | None = None
    _reply_ref: Ref | None = None

    async def _boot(self, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter) -> Any:
        func, reply_to, ref, link_to, hook = args
        pid = self.pid
        # Everything below happens before `start` returns and before `func` runs, so a
        # task that finishes at once cannot outrun its monitor, link or hook.
        if hook is not None and not hook.attach(self):
            raise _Exit("shutdown")
        if reply_to is not None and reply_to._status is not DEAD:
            self._reply_to = reply_to
            self._reply_ref = ref
            reply_to._monitoring[ref] = pid  # the owner's monitor, under the task's ref
            self._monitors[ref] = _Monitor(ref, reply_to)
        if link_to is not None:
            if link_to._status is DEAD:
                raise _Exit("noproc")
            link_to._links[pid] = None
            self._links[link_to.pid] = None
        return await super()._boot((func,), {}, ack)

    async def run(self, state: Any) -> Any:
        try:
            value = await _maybe_await(self._func())
        except Exception as e:
            self._outcome = (False, e)
            raise
        self._outcome = (True, value)
        to = self._reply_to
        if to is not None and to._status is not DEAD:
            to._mbox.put((self._reply_ref, value))
        raise _Exit("normal")


def _bind(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    if not callable(fn):
        raise TypeError(f"a task runs a function, got {type(fn).__name__} {fn!r}")
    return functools.partial(fn, *args) if args else fn


def _caller(what: str, hint: str) -> Process:
    me = _current.get()
    if me is None:
        raise NotInProcess(
            f"{what} sends the task's result to the calling process, but it was called "
            f"outside any process: {hint}"
        )
    return me


def _task_spec(
    args: tuple[Any, ...], restart: RestartType = RestartType.TEMPORARY, shutdown: Shutdown = 5.0
) -> ChildSpec:
    return ChildSpec(
        id="task", actor_class=_AsyncTask, args=args, restart=restart, shutdown=shutdown
    )


async def _async(fn: Callable[..., Any], args: tuple[Any, ...], shutdown: Shutdown) -> TaskHandle:
    func = _bind(fn, args)
    me = _caller(
        "Task.async_()",
        "call it from inside a process (an actor, a GenServer handler, a task), or use "
        "Task.spawn(func, task_group) / TaskSupervisor.start_child(sup, func)",
    )
    ref = Ref()
    proc = _AsyncTask()
    await start_process(proc, (func, me, ref, me, None), {}, me._tg, owner=me, shutdown=shutdown)
    return TaskHandle(proc, ref, me.pid)


# ---------------------------------------------------------------- await and friends


def _owner(task: Any, what: str) -> Process:
    if not isinstance(task, TaskHandle):
        raise TypeError(
            f"Task.{what}() takes a TaskHandle from Task.async_() or "
            f"TaskSupervisor.async_nolink(), got {type(task).__name__} {task!r}"
        )
    if task.ref is None:
        raise TypeError(
            f"Task.{what}({task!r}): this handle comes from Task.spawn(), which sends no "
            "result message; use `await handle.join()` (or start it with Task.async_())"
        )
    me = _current.get()
    if me is None or me._pid != task.owner:
        where = "outside any process" if me is None else f"from {me._pid!r}"
        raise NotInProcess(
            f"Task.{what}({task!r}) was called {where}, but only the task's owner "
            f"{task.owner!r} (the process that started it) receives its result: call it "
            "there"
        )
    return me


def _keys(ref: Ref) -> tuple[Callable[[Any], tuple[Any, ...] | None], ...]:
    """Matchers for ``(ref, result)`` and ``("DOWN", ref, "process", pid, reason)``."""

    def result(m: Any) -> tuple[Any, ...] | None:
        if type(m) is tuple and len(m) == 2 and type(m[0]) is Ref and m[0] == ref:
            return (m[1],)
        return None

    def down(m: Any) -> tuple[Any, ...] | None:
        if (
            type(m) is tuple
            and len(m) == 5
            and m[0] == "DOWN"
            and type(m[1]) is Ref
            and m[1] == ref
            and m[2] == "process"
        ):
            return (m[4],)
        return None

    return (result, down)


def _forget_monitor(me: Process, ref: Ref) -> None:
    """``demonitor(ref, flush=True)`` on behalf of ``me``."""
    target = me._monitoring.pop(ref, None)
    if target is not None:
        p = target._proc
        if p is not None:
            p._monitors.pop(ref, None)
    down = _keys(ref)[1]
    me._mbox.remove_first(lambda m: down(m) is not None)


async def _receive(me: Process, task: TaskHandle, timeout: float | None) -> Outcome | None:
    ref = task.ref
    assert ref is not None
    try:
        index, (value,) = await me._mbox.receive(_keys(ref), timeout)
    except ReceiveTimeout:
        return None
    if index == 0:
        _forget_monitor(me, ref)
        return ("ok", value)
    return ("exit", value)


def _exit_error(pid: Any, reason: Any, what: str) -> BaseException:
    if isinstance(reason, Exception):
        return reason
    return ExitError(
        f"{what}: the task {pid!r} exited with reason {reason!r} before returning a result",
        pid,
        reason,
    )


async def _await(task: TaskHandle, timeout: float | None) -> Any:
    me = _owner(task, "await_")
    got = await _receive(me, task, timeout)
    if got is None:
        raise TaskTimeout(
            f"Task.await_({task!r}, timeout={timeout}) timed out: no result in {timeout} s; "
            "the task keeps running (Task.shutdown(task) stops it; await_ or yield_ may "
            "wait again)",
            task,
            timeout,
        )
    if got[0] == "ok":
        return got[1]
    raise _exit_error(task.pid, got[1], f"Task.await_({task!r})")


async def _yield(task: TaskHandle, timeout: float | None) -> Outcome | None:
    me = _owner(task, "yield_")
    return await _receive(me, task, timeout)


def _is_shutdown(reason: Any) -> bool:
    return type(reason) is str and reason in ("shutdown", "killed")


async def _shutdown_task(task: TaskHandle, timeout: Shutdown) -> Outcome | None:
    me = _owner(task, "shutdown")
    await me._shutdown(task._task, timeout)  # unlinks first: the owner is not hit
    got = await _receive(me, task, 0)
    if got is None or (got[0] == "exit" and _is_shutdown(got[1])):
        return None
    return got


# ------------------------------------------------------------------ TaskSupervisor


class TaskSupervisor(DynamicSupervisor):
    """A :class:`~anyotp.DynamicSupervisor` for tasks; like Elixir's ``Task.Supervisor``.

    Start it like any supervisor (``await TaskSupervisor.start(task_group=tg)``, or as
    a child with ``ChildSpec(id="tasks", actor_class=TaskSupervisor)``), then run
    functions under it.  Its tasks are ``TEMPORARY`` children by default: never
    restarted.  ``max_children`` limits how many run at once; ``terminate_child``,
    ``which_children`` and ``count_children`` work as for any DynamicSupervisor.
    """

    @staticmethod
    async def start_child(
        sup: PID | str,
        fn: Callable[..., Any] | ChildSpec,
        /,
        *args: Any,
        restart: RestartType = RestartType.TEMPORARY,
        shutdown: Shutdown = 5.0,
        timeout: float | None = 5.0,
    ) -> PID:
        """Run ``fn(*args)`` (sync or async) as a task under ``sup``; fire and forget.

        Like ``Task.Supervisor.start_child/3``: nobody is told of the result.  Given a
        :class:`~anyotp.ChildSpec` instead of a function, it starts that child as
        :meth:`DynamicSupervisor.start_child` does.

        Args:
            sup: the TaskSupervisor's PID or registered name.
            fn: the function; ``*args`` are passed to it.
            restart: ``TEMPORARY`` (default: never restarted), ``TRANSIENT`` (run again
                if it raised or was killed) or ``PERMANENT`` (run again whenever it
                exits).
            shutdown: seconds the task gets to stop before it is killed when the
                supervisor stops it; ``"brutal_kill"``; None waits forever.
            timeout: seconds to wait for the supervisor's answer; None waits forever.

        Returns:
            The task's PID.

        Raises:
            SupervisorError: ``max_children`` tasks are already running.
            CallError: ``sup`` is not alive or did not answer in time.
        """
        if isinstance(fn, ChildSpec):
            return await DynamicSupervisor.start_child(sup, fn, timeout=timeout)
        spec = _task_spec((_bind(fn, args), None, None, None, None), restart, shutdown)
        return await DynamicSupervisor.start_child(sup, spec, timeout=timeout)

    @staticmethod
    async def _start_async(
        sup: PID | str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        link: bool,
        shutdown: Shutdown,
        timeout: float | None,
        what: str,
    ) -> TaskHandle:
        func = _bind(fn, args)
        me = _caller(
            what,
            "call it from inside a process, or use TaskSupervisor.start_child(sup, fn) "
            "(fire and forget) or Task.async_stream(..., supervisor=sup)",
        )
        ref = Ref()
        hook = _Hook()
        spec = _task_spec((func, me, ref, me if link else None, hook), shutdown=shutdown)
        await DynamicSupervisor.start_child(sup, spec, timeout=timeout)
        assert hook.proc is not None
        return TaskHandle(hook.proc, ref, me.pid)

    @staticmethod
    async def async_nolink(
        sup: PID | str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        shutdown: Shutdown = 5.0,
        timeout: float | None = 5.0,
    ) -> TaskHandle:
        """Run ``fn(*args)`` as a task under ``sup``, not linked to the caller.

        Like ``Task.Supervisor.async_nolink/3``.  The caller monitors the task and gets
        its result as ``(task.ref, result)``; if the task fails, the caller is not
        hurt: :meth:`Task.await_ <anyotp.Task.await_>` raises the task's exception,
        :meth:`Task.yield_ <anyotp.Task.yield_>` returns ``("exit", reason)``, and a
        GenServer sees ``("DOWN", task.ref, "process", pid, reason)`` in
        ``handle_info``.  The task is owned by the supervisor: it keeps running if the
        caller exits, and is stopped with the supervisor.

        Args:
            sup: the TaskSupervisor's PID or registered name.
            fn: the function; ``*args`` are passed to it.
            shutdown: seconds the task gets to stop before it is killed.
            timeout: seconds to wait for the supervisor's answer; None waits forever.

        Returns:
            A :class:`~anyotp.TaskHandle` for ``Task.await_``/``yield_``/``shutdown``.

        Raises:
            NotInProcess: called outside a process (nothing could receive the result).
            SupervisorError: ``max_children`` tasks are already running.
            CallError: ``sup`` is not alive or did not answer in time.
        """
        return await TaskSupervisor._start_async(
            sup, fn, args, False, shutdown, timeout, "TaskSupervisor.async_nolink()"
        )

    @staticmethod
    async def async_(
        sup: PID | str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        shutdown: Shutdown = 5.0,
        timeout: float | None = 5.0,
    ) -> TaskHandle:
        """Like :meth:`async_nolink`, but the task is also linked to the caller.

        Like ``Task.Supervisor.async/3``: a task that crashes crashes the caller
        (unless it traps exits), and the caller exiting kills the task.

        Raises:
            NotInProcess: called outside a process.
            SupervisorError: ``max_children`` tasks are already running.
            CallError: ``sup`` is not alive or did not answer in time.
        """
        return await TaskSupervisor._start_async(
            sup, fn, args, True, shutdown, timeout, "TaskSupervisor.async_()"
        )


setattr(TaskSupervisor, "async", TaskSupervisor.__dict__["async_"])


# -------------------------------------------------------------------- async_stream


class _Slot(_Hook):
    """One item of an async_stream: its task, deadline and outcome."""

    __slots__ = ("dead", "deadline", "index", "item", "reason", "stream", "timed_out")

    def __init__(self, stream: TaskStream, index: int, item: Any, deadline: float | None) -> None:
        super().__init__()
        self.stream = stream
        self.index = index
        self.item = item
        self.deadline = deadline
        self.dead = False
        self.timed_out = False
        self.reason: Any = None

    def attach(self, proc: _AsyncTask) -> bool:
        self.proc = proc
        if self.stream._closed:
            return False
        proc._monitors[self] = self
        return True

    def down(self, pid: PID, reason: Any) -> None:
        self.dead = True
        self.reason = reason
        self.stream._on_down(self)


_END: Any = object()


class TaskStream:
    """The async iterator returned by :meth:`Task.async_stream <anyotp.Task.async_stream>`.

    Iterate it with ``async for status, value in stream``; each item is
    ``("ok", result)`` or ``("exit", reason)``.  It is also an async context manager:
    leaving the ``async with`` block (a ``break``, an exception, a cancellation) calls
    :meth:`aclose`, which stops every running task.  Not constructed directly.
    """

    def __init__(
        self,
        enumerable: Iterable[Any] | AsyncIterable[Any],
        fn: Callable[[Any], Any],
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        timeout: float | None = 5.0,
        on_timeout: Literal["exit", "kill_task"] = "exit",
        supervisor: PID | str | None = None,
        shutdown: Shutdown = 5.0,
    ) -> None:
        if max_concurrency is None:
            max_concurrency = os.cpu_count() or 1
        if (
            not isinstance(max_concurrency, int)
            or isinstance(max_concurrency, bool)
            or max_concurrency < 1
        ):
            raise ValueError(
                f"Task.async_stream(max_concurrency={max_concurrency!r}): it must be an "
                "int >= 1 (the most tasks running at once)"
            )
        if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
            raise ValueError(
                f"Task.async_stream(timeout={timeout!r}): give seconds >= 0, or None for no limit"
            )
        if on_timeout not in ("exit", "kill_task"):
            raise ValueError(
                f"Task.async_stream(on_timeout={on_timeout!r}): use 'exit' (raise "
                "TaskTimeout) or 'kill_task' (yield ('exit', 'timeout') for that item)"
            )
        if not callable(fn):
            raise TypeError(f"Task.async_stream() needs a function, got {fn!r}")
        owner = _current.get()
        if supervisor is None and owner is None:
            raise NotInProcess(
                "Task.async_stream() without supervisor= runs its tasks as children of the "
                "calling process, but it was called outside any process: call it from a "
                "process, or pass supervisor= a TaskSupervisor's PID"
            )
        self._owner = owner
        self._source = enumerable
        self._aiter: AsyncIterator[Any] | None = None
        self._iter: Iterator[Any] | None = None
        self._fn = fn
        self._max = max_concurrency
        self._ordered = ordered
        self._timeout = None if timeout is None else float(timeout)
        self._on_timeout = on_timeout
        self._sup = supervisor
        self._shutdown: Shutdown = shutdown
        self._pending: dict[int, _Slot] = {}  # started, not yet yielded
        self._finished: deque[_Slot] = deque()  # dead, not yet looked at
        self._ready: dict[int, Outcome] = {}  # outcomes waiting to be yielded
        self._ready_order: deque[int] = deque()  # completion order (unordered mode)
        self._next_in = 0
        self._next_out = 0
        self._exhausted = False
        self._closed = False
        self._waiter: Waiter | None = None

    # ------------------------------------------------------------------ protocol

    def __aiter__(self) -> TaskStream:
        return self

    async def __aenter__(self) -> TaskStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Outcome:
        if self._closed:
            raise StopAsyncIteration
        try:
            while True:
                await self._fill()
                self._collect()
                out = self._pop_ready()
                if out is not None:
                    return out
                if self._exhausted and not self._pending:
                    await self.aclose()
                    raise StopAsyncIteration
                await self._wait()
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop every running task and close the input; idempotent.

        Each task gets ``shutdown`` seconds (all at once) to stop, then is killed.
        The input is closed if it is a generator (it has ``aclose``/``close``).
        Runs shielded from cancellation, so nothing is left behind.
        """
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            procs = [s.proc for s in self._pending.values() if not s.dead and s.proc is not None]
            self._pending.clear()
            self._ready.clear()
            self._finished.clear()
            await _stop_all(procs, self._shutdown)
            if self._aiter is not None:
                aclose = getattr(self._aiter, "aclose", None)
                if aclose is not None:
                    await aclose()
            elif self._iter is not None:
                close = getattr(self._iter, "close", None)
                if close is not None:
                    close()

    # ----------------------------------------------------------------- machinery

    async def _next_item(self) -> Any:
        if self._aiter is None and self._iter is None:
            src = self._source
            if isinstance(src, AsyncIterable):
                self._aiter = aiter(src)
            else:
                self._iter = iter(src)
        if self._aiter is not None:
            return await anext(self._aiter, _END)
        assert self._iter is not None
        return next(self._iter, _END)

    async def _fill(self) -> None:
        while not self._exhausted and len(self._pending) < self._max:
            item = await self._next_item()
            if item is _END:
                self._exhausted = True
                return
            await self._spawn(item)

    async def _spawn(self, item: Any) -> None:
        index = self._next_in
        self._next_in += 1
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        slot = _Slot(self, index, item, deadline)
        self._pending[index] = slot
        args = (functools.partial(self._fn, item), None, None, None, slot)
        if self._sup is None:
            owner = self._owner
            assert owner is not None
            await start_process(
                _AsyncTask(), args, {}, owner._tg, owner=owner, shutdown=self._shutdown
            )
        else:
            spec = _task_spec(args, shutdown=self._shutdown)
            await DynamicSupervisor.start_child(self._sup, spec)

    def _on_down(self, slot: _Slot) -> None:
        if self._closed:
            return
        self._finished.append(slot)
        w = self._waiter
        if w is not None:
            self._waiter = None
            w.set(None)

    def _collect(self) -> None:
        """Turn dead tasks into outcomes (raise for a failed unsupervised task)."""
        while self._finished:
            slot = self._finished.popleft()
            proc = slot.proc
            outcome = proc._outcome if proc is not None else _PENDING
            result: Outcome
            if slot.timed_out:
                result = ("exit", "timeout")
            elif outcome is not _PENDING and outcome[0]:
                result = ("ok", outcome[1])
            elif self._sup is None:
                raise _exit_error(
                    proc._pid if proc is not None else None,
                    slot.reason,
                    f"Task.async_stream(): item #{slot.index} ({slot.item!r})",
                )
            else:
                result = ("exit", slot.reason)
            self._ready[slot.index] = result
            self._ready_order.append(slot.index)

    def _pop_ready(self) -> Outcome | None:
        if self._ordered:
            index = self._next_out
            out = self._ready.pop(index, None)
            if out is None:
                return None
            self._next_out += 1
        else:
            if not self._ready_order:
                return None
            index = self._ready_order.popleft()
            out = self._ready.pop(index)
        del self._pending[index]
        return out

    async def _wait(self) -> None:
        """Wait for a task to finish, or for the nearest deadline (then apply it)."""
        loop = current_loop()
        assert loop is not None
        w = loop.new_waiter()
        self._waiter = w
        if self._finished:  # one died while we were busy
            self._waiter = None
            return
        deadline = min(
            (
                s.deadline
                for s in self._pending.values()
                if s.deadline is not None and not s.dead and not s.timed_out
            ),
            default=None,
        )
        try:
            if deadline is None:
                await w.wait(None)
                return
            got = await w.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self._waiter = None
        if got is TIMEOUT:
            self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        for slot in list(self._pending.values()):
            if slot.dead or slot.timed_out or slot.deadline is None or slot.deadline > now:
                continue
            proc = slot.proc
            if self._on_timeout == "exit":
                raise TaskTimeout(
                    f"Task.async_stream(): the task for item #{slot.index} ({slot.item!r}) did "
                    f"not finish within timeout={self._timeout} s; every task of the stream "
                    "was stopped (pass on_timeout='kill_task' to skip such items, or raise "
                    "timeout)",
                    proc._pid if proc is not None else None,
                    self._timeout,
                )
            slot.timed_out = True
            if proc is not None:
                proc._signal_exit(None, "kill")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._pending)} pending"
        return f"<TaskStream {state}, max_concurrency={self._max}>"


async def _stop_all(procs: list[_AsyncTask], shutdown: Shutdown) -> None:
    """Ask every process to exit with ``"shutdown"`` at once, wait for them (``shutdown``
    seconds in all, then kill the stragglers)."""
    loop = current_loop()
    assert loop is not None
    brutal = shutdown == "brutal_kill"
    watches: list[tuple[_AsyncTask, _DeathWatch]] = []
    for p in procs:
        if p._status is DEAD:
            continue
        watch = _DeathWatch(loop.new_waiter())
        p._monitors[watch] = watch
        watches.append((p, watch))
        if brutal:
            p._signal_exit(None, "kill")
        else:
            p._force_exit("shutdown")
    deadline = None if brutal or shutdown is None else time.monotonic() + float(shutdown)
    for p, watch in watches:
        try:
            if p._status is DEAD:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if await watch.waiter.wait(remaining) is TIMEOUT:
                log.warning(
                    "task %r did not stop within %s s of shutdown; killing it", p._pid, shutdown
                )
                # a timed-out waiter is spent: wait for the kill on a fresh one
                watch.waiter = loop.new_waiter()
                if p._status is DEAD:
                    continue
                p._signal_exit(None, "kill")
                await watch.waiter.wait(None)
        finally:
            p._monitors.pop(watch, None)
