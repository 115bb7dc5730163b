"""Tasks: a process that runs one function, and Elixir's Task API.

:meth:`Task.spawn` runs ``func`` (sync or async) as a process and returns a
:class:`TaskHandle`; ``await handle.join()`` gives its return value or raises its
exception.  :meth:`Task.spawn_and_notify` also sends the outcome to a process as
``(success_message_name, task_pid, value)`` or ``(failure_message_name, task_pid,
exception)``.  A task that raises exits with that exception as its reason (logged
once, like any crash), so links, monitors and supervisors see an abnormal exit.
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
    ``await_many`` and ``yield_many`` do the same for several tasks at once, with one
    timeout for all of them.

When not to use it
    For work whose result nobody awaits, use ``TaskSupervisor.start_child``; for a
    long-lived worker with state, a GenServer under a supervisor.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal

import anyio

from ._actor import Actor, task_group_target
from ._child_spec import ChildSpec, RestartType, supervisor_request
from ._core import (
    DEAD,
    PID,
    TIMEOUT,
    MonitorHook,
    Proc,
    ProcessExit,
    Ref,
    Shutdown,
    Target,
    Waiter,
    check_timeout,
    current_loop,
    current_process,
    demonitor,
    maybe_await,
    on_exit,
    seconds,
    send_nowait,
    spawn,
    stop,
    stop_all,
    wait_dead,
)
from ._exceptions import ExitError, NotInProcess, ReceiveTimeout, TaskTimeout

__all__ = ["Task", "TaskHandle", "TaskStream"]

Outcome = tuple[Literal["ok", "exit"], Any]

_PENDING: Any = object()


class TaskHandle:
    """Handle to a running :class:`Task`.

    Attributes:
        pid: the task's PID.
        ref: for tasks from :meth:`Task.async_` / ``TaskSupervisor.async_nolink``: the
            monitor reference that tags its result message ``(ref, result)`` and its
            ``("DOWN", ref, "process", pid, reason)``; None for :meth:`Task.spawn`.
        owner: the process that receives the result (may ``await_``/``yield_``/
            ``shutdown`` it), or None for :meth:`Task.spawn`.
    """

    __slots__ = ("_mark", "_task", "owner", "pid", "ref")

    def __init__(
        self,
        task: Task,
        ref: Ref | None = None,
        owner: PID | None = None,
        mark: tuple[int, int] | None = None,
    ) -> None:
        self._task = task
        # where the owner's mailbox ended when `ref` was made: await_/yield_ scan only
        # what came after (bench: backlog await)
        self._mark = mark
        self.pid: PID = task.pid
        self.ref: Ref | None = ref
        self.owner: PID | None = owner

    async def join(self) -> Any:
        """Wait for the task to finish; return its value or raise its exception.

        Raises:
            Exception: whatever the task's function raised.
            ExitError: the task was stopped or killed before it finished.
        """
        task = self._task
        pcb = task._otp_pcb
        assert pcb is not None
        reason = await wait_dead(pcb)
        if task._otp_outcome is not _PENDING:
            ok, value = task._otp_outcome
            if ok:
                return value
            raise value
        raise ExitError(
            f"task {self.pid!r} exited with reason {reason!r} before finishing", self.pid, reason
        )

    def __repr__(self) -> str:
        return f"<TaskHandle {self.pid!r}>"


class Task(Actor):
    """A process that runs one function; see :meth:`spawn` and :meth:`spawn_and_notify`."""

    _otp_outcome: Any = _PENDING
    # Class-level defaults: a task can exit before its init ran (refused at start),
    # and _otp_dying must still work then.
    _otp_notify_pid: PID | None = None
    _otp_success: Any = "$$success"
    _otp_failure: Any = "$$failure"

    async def init(
        self,
        func: Callable[[], Any],
        notify_pid: PID | None = None,
        success_message_name: Any = "$$success",
        failure_message_name: Any = "$$failure",
    ) -> None:
        """Keep the function to run and whom to notify of its outcome."""
        self._otp_func = func
        self._otp_notify_pid = notify_pid
        self._otp_success = success_message_name
        self._otp_failure = failure_message_name

    def _otp_notify(self, tag: Any, value: Any) -> None:
        target = self._otp_notify_pid
        if target is not None:
            send_nowait(target, (tag, self.pid, value))

    async def run(self, state: Any) -> Any:
        """Run the function once, record its outcome, notify, and exit ``"normal"``."""
        try:
            value = await maybe_await(self._otp_func())
        except Exception as e:
            self._otp_outcome = (False, e)
            self._otp_notify(self._otp_failure, e)
            raise
        self._otp_outcome = (True, value)
        self._otp_notify(self._otp_success, value)
        raise ProcessExit("normal")

    def _otp_crash_handled(self, reason: Any) -> bool:
        """Runtime hook: a failure sent to the notified process (``handle_task_end``)
        is handled there, not logged as a crash."""
        return self._otp_notify_pid is not None

    def _otp_dying(self, reason: Any) -> None:
        # A runtime hook, run as the process dies on every exit (a kill included), so
        # the notified process always learns that the task ended without a result.
        if self._otp_outcome is _PENDING:
            pid = self.pid
            err = ExitError(
                f"task {pid!r} exited with reason {reason!r} before finishing", pid, reason
            )
            self._otp_notify(self._otp_failure, err)

    @classmethod
    async def spawn(cls, func: Callable[[], Any], task_group: Any) -> TaskHandle:
        """Run ``func()`` (sync or async) as a task in ``task_group``.

        Args:
            func: a callable taking no arguments (use ``functools.partial`` for args).
            task_group: an anyio TaskGroup, or ``self.children`` of an actor (the task
                is then stopped when the actor exits).

        Raises:
            TypeError: ``func`` is not callable (a coroutine object: pass the function).
        """
        _check_callable(func, f"{cls.__name__}.spawn()")
        tg, owner = task_group_target(cls.__name__, task_group)
        task = cls()
        await spawn(task, (func,), {}, tg, owner=owner)
        return TaskHandle(task)

    @classmethod
    async def spawn_and_notify(
        cls,
        func: Callable[[], Any],
        task_group: Any,
        parent_pid: PID,
        success_message_name: Any = "$$success",
        failure_message_name: Any = "$$failure",
    ) -> TaskHandle:
        """Like :meth:`spawn`, and send the outcome to ``parent_pid``.

        On success ``(success_message_name, task_pid, value)`` is sent; on failure
        ``(failure_message_name, task_pid, exception)`` (an :class:`ExitError` if the
        task was stopped before finishing).
        """
        _check_callable(func, f"{cls.__name__}.spawn_and_notify()")
        tg, owner = task_group_target(cls.__name__, task_group)
        task = cls()
        args = (func, parent_pid, success_message_name, failure_message_name)
        await spawn(task, args, {}, tg, owner=owner)
        return TaskHandle(task)

    # ------------------------------------------- Elixir's Task API (_task_supervisor)
    # `async` and `await` are Python keywords: the methods are spelled `async_` and
    # `await_` (like `yield_`), and `getattr(Task, "async")` / `getattr(Task, "await")`
    # are aliases for code generated from Elixir's names.

    @staticmethod
    async def async_(fn: Callable[..., Any], *args: Any, shutdown: Shutdown = 5.0) -> TaskHandle:
        """Run ``fn(*args)`` (sync or async) as a task linked to and owned by the caller.

        Like Elixir's ``Task.async/1``.  The task is linked to the calling process (its
        crash crashes the caller, unless the caller traps exits) and monitored by it;
        it is stopped when the caller exits.  Its result arrives in the caller's
        mailbox as ``(task.ref, result)``: take it with :meth:`await_` or
        :meth:`yield_` (or in ``handle_info`` of a GenServer, then
        ``demonitor(task.ref, flush=True)``).

        Args:
            fn: the function; ``*args`` are passed to it.
            shutdown: seconds the task gets to stop when its owner exits, before it is
                killed; ``"brutal_kill"``, or None to wait forever.

        Returns:
            A :class:`TaskHandle` with ``ref`` and ``owner`` set.

        Raises:
            NotInProcess: called outside a process (use ``Task.spawn``, or
                ``TaskSupervisor.start_child``, from plain code).
        """
        return await _async(fn, args, shutdown)

    @staticmethod
    async def await_(task: TaskHandle, timeout: float | None = 5.0) -> Any:
        """Wait for the result of a task started by :meth:`async_` / ``async_nolink``.

        Like Elixir's ``Task.await/2``: a selective receive of ``(task.ref, result)``
        or the task's DOWN in the owner's mailbox.  Unlike Elixir, a timeout does not
        exit the caller: it raises, and the task keeps running (stop it with
        :meth:`shutdown`, or wait again).

        Args:
            task: a handle from ``Task.async_`` or ``TaskSupervisor.async_nolink``.
            timeout: seconds to wait; None waits forever.

        Returns:
            The task's result.

        Raises:
            TaskTimeout: no result within ``timeout`` seconds (a ``TimeoutError``).
            Exception: the exception the task raised (re-raised as is).
            ExitError: the task exited without a result (stopped, killed, ``noproc``);
                ``.reason`` says why.
            NotInProcess: not called from the task's owner.
            TypeError: ``task`` is not a handle from ``async_``/``async_nolink``.
        """
        return await _await(task, timeout)

    @staticmethod
    async def yield_(
        task: TaskHandle, timeout: float | None = 5.0
    ) -> tuple[Literal["ok", "exit"], Any] | None:
        """Wait up to ``timeout`` seconds for a task's outcome; None if it is not done.

        Like Elixir's ``Task.yield/2``: ``("ok", result)``, ``("exit", reason)`` if
        the task exited without a result (``reason`` is its exception, or
        ``"killed"``...), or None if neither came in time: the task keeps running
        and ``yield_`` may be called again.  (The tuple tells a task that returned
        None from one still running.)

        Args:
            task: a handle from ``Task.async_`` or ``TaskSupervisor.async_nolink``.
            timeout: seconds to wait; 0 only looks; None waits forever.

        Raises:
            NotInProcess: not called from the task's owner.
            TypeError: ``task`` is not a handle from ``async_``/``async_nolink``.
        """
        return await _yield(task, timeout)

    @staticmethod
    async def shutdown(
        task: TaskHandle, timeout: Shutdown = 5.0
    ) -> tuple[Literal["ok", "exit"], Any] | None:
        """Stop a task: unlink it, exit it with ``"shutdown"``, kill it after ``timeout``.

        Like Elixir's ``Task.shutdown/2``.  Returns once the task is dead.

        Args:
            task: a handle from ``Task.async_`` or ``TaskSupervisor.async_nolink``.
            timeout: seconds the task gets to stop before it is killed;
                ``"brutal_kill"`` kills at once; None waits forever.

        Returns:
            ``("ok", result)`` if the task finished before it was stopped,
            ``("exit", reason)`` if it had already exited abnormally, else None.

        Raises:
            NotInProcess: not called from the task's owner.
            TypeError: ``task`` is not a handle from ``async_``/``async_nolink``.
        """
        return await _shutdown_task(task, timeout)

    @staticmethod
    async def await_many(tasks: Sequence[TaskHandle], timeout: float | None = 5.0) -> list[Any]:
        """Wait for the results of several tasks; return them in the order of ``tasks``.

        Like Elixir's ``Task.await_many/2``: results are received as they come (in any
        order) until all are in; the first task that fails ends the wait at once.
        ``timeout`` bounds the whole wait, not each task.  On timeout or failure the
        other tasks keep running (stop them with :meth:`shutdown`).

        Args:
            tasks: handles from ``Task.async_`` or ``TaskSupervisor.async_nolink``,
                all owned by the caller.
            timeout: seconds for all of them; None waits forever.

        Returns:
            The results, in the order of ``tasks``.

        Raises:
            TaskTimeout: not every result came within ``timeout`` seconds.
            Exception: the exception a task raised (the first failure to arrive).
            ExitError: a task exited without a result (stopped, killed, ``noproc``).
            NotInProcess: not called from the tasks' owner.
            TypeError: an item is not a handle from ``async_``/``async_nolink``.
        """
        outcomes = await _many(tasks, timeout, "await_many", stop_on_exit=True)
        for task, got in zip(tasks, outcomes, strict=True):
            if got is not None and got[0] == "exit":
                raise _exit_error(task.pid, got[1], f"Task.await_many(): {task!r}")
        results: list[Any] = []
        for task, got in zip(tasks, outcomes, strict=True):
            if got is None:
                missing = sum(1 for o in outcomes if o is None)
                raise TaskTimeout(
                    f"Task.await_many() of {len(tasks)} task(s) timed out: {missing} result(s) "
                    f"missing after {timeout} s (first: {task!r}); the tasks keep running "
                    "(Task.shutdown(task) stops one)",
                    task,
                    timeout,
                )
            results.append(got[1])
        return results

    @staticmethod
    async def yield_many(
        tasks: Sequence[TaskHandle], timeout: float | None = 5.0
    ) -> list[Outcome | None]:
        """Wait up to ``timeout`` seconds for several tasks; their outcomes in order.

        Like Elixir's ``Task.yield_many/2``: returns once every task finished or the
        time is up, one item per task, in the order of ``tasks``: ``("ok", result)``,
        ``("exit", reason)`` (the task exited without a result), or None (still
        running: it keeps running, and ``yield_``/``yield_many`` may wait again).

        Args:
            tasks: handles from ``Task.async_`` or ``TaskSupervisor.async_nolink``,
                all owned by the caller.
            timeout: seconds for all of them; 0 only looks; None waits forever.

        Raises:
            NotInProcess: not called from the tasks' owner.
            TypeError: an item is not a handle from ``async_``/``async_nolink``.
        """
        return await _many(tasks, timeout, "yield_many", stop_on_exit=False)

    @staticmethod
    def async_stream(
        enumerable: Iterable[Any] | AsyncIterable[Any],
        fn: Callable[[Any], Any],
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        timeout: float | None = 5.0,
        on_timeout: Literal["exit", "kill_task"] = "exit",
        supervisor: Target | None = None,
        shutdown: Shutdown = 5.0,
        zip_input_on_exit: bool = False,
    ) -> TaskStream:
        """Run ``fn(item)`` for each item as a task, at most ``max_concurrency`` at once.

        Like Elixir's ``Task.async_stream/3``.  Returns an async iterator of
        ``("ok", result)`` per item (``("exit", reason)`` for a task that failed
        under ``supervisor=`` or was killed by ``on_timeout="kill_task"``).  Input
        (a sync or async iterable, possibly infinite) is consumed lazily: an item is
        taken only when fewer than ``max_concurrency`` results are pending (running
        or waiting to be yielded in order).  Use it as::

            async with Task.async_stream(items, fetch, max_concurrency=8) as results:
                async for status, value in results:
                    ...

        ``async with`` (or ``contextlib.aclosing``) makes breaking out early stop the
        running tasks at once; a plain ``async for`` stops them only when the stream
        is exhausted, raises, or its owner exits.

        Without ``supervisor``, the tasks are owned by the calling process (which
        must be a process) and a task that raises makes the iterator raise that
        exception (Elixir links the tasks, so the caller would crash).  With
        ``supervisor=`` a ``TaskSupervisor``, the tasks run under it, not linked
        (``Task.Supervisor.async_stream_nolink``): a failure is yielded as
        ``("exit", reason)``, and the caller need not be a process.

        Args:
            enumerable: the items: a sync or async iterable (generators are closed
                when the stream is closed).
            fn: called as ``fn(item)``; sync or async.
            max_concurrency: most tasks at once; default ``os.cpu_count()``.
            ordered: yield results in input order (True) or as they complete.
            timeout: seconds each task may run, counted from its start; None is
                no limit.
            on_timeout: ``"exit"``: raise :class:`~anyotp.TaskTimeout` out of the
                iterator (after stopping every task); ``"kill_task"``: kill that
                task and yield ``("exit", "timeout")`` for it.
            supervisor: a ``TaskSupervisor`` PID or name to run the tasks under.
            shutdown: seconds each task gets to stop when the stream is closed early,
                before it is killed; ``"brutal_kill"``, or None to wait forever.
            zip_input_on_exit: yield ``("exit", (item, reason))`` instead of
                ``("exit", reason)`` for an item whose task exited, so the failed
                input is known (Elixir's ``:zip_input_on_exit``).

        Returns:
            A :class:`~anyotp.TaskStream` (an async iterator and context manager).

        Raises:
            NotInProcess: no ``supervisor`` and not called from a process.
            ValueError: ``max_concurrency`` < 1, a negative ``timeout``, or an
                unknown ``on_timeout``.
        """
        return TaskStream(
            enumerable,
            fn,
            max_concurrency=max_concurrency,
            ordered=ordered,
            timeout=timeout,
            on_timeout=on_timeout,
            supervisor=supervisor,
            shutdown=shutdown,
            zip_input_on_exit=zip_input_on_exit,
        )


# Elixir's names, which are keywords in Python: getattr(Task, "async") is Task.async_.
setattr(Task, "async", Task.__dict__["async_"])
setattr(Task, "await", Task.__dict__["await_"])


# ----------------------------------------------------------------- the task process


class Hook:
    """Filled in by a task as it starts (before ``start`` returns): its process."""

    __slots__ = ("proc",)

    def __init__(self) -> None:
        self.proc: Proc | None = None

    def attach(self, proc: Proc) -> bool:
        """Called by the starting task; False tells it to exit (nobody wants it)."""
        self.proc = proc
        return True


class _AsyncTask(Task):
    """The process behind ``Task.async_``, ``async_nolink``, ``async_stream`` and
    ``TaskSupervisor.start_child``: runs ``func()``, sends ``(ref, result)`` to
    ``reply_to``.  Started with ``args=(func, reply_to, ref, link_to, hook)``."""

    _otp_reply_to: Proc | None = None
    _otp_reply_ref: Ref | None = None
    _otp_delivered = False

    async def _otp_boot(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> Any:
        func, reply_to, ref, link_to, hook = args
        pid = proc.pid
        # the outcome goes to an owner (await_/yield_, a DOWN) or a stream: a failure
        # is handled there, not logged as a crash
        self._otp_delivered = reply_to is not None or hook is not None
        # Everything below happens before `start` returns and before `func` runs, so a
        # task that finishes at once cannot outrun its monitor, link or hook.
        if hook is not None and not hook.attach(proc):
            raise ProcessExit("shutdown")
        if reply_to is not None and reply_to.status is not DEAD:
            self._otp_reply_to = reply_to
            self._otp_reply_ref = ref
            reply_to.monitoring[ref] = pid  # the owner's monitor, under the task's ref
            on_exit(proc, MonitorHook(ref, reply_to), ref)
        if link_to is not None:
            if link_to.status is DEAD:
                raise ProcessExit("noproc")
            link_to.links[pid] = None
            proc.links[link_to.pid] = None
        return await super()._otp_boot(proc, (func,), {}, ack)

    def _otp_crash_handled(self, reason: Any) -> bool:
        return self._otp_delivered

    async def run(self, state: Any) -> Any:
        """Run the function once, record its outcome, notify, and exit ``"normal"``."""
        try:
            value = await maybe_await(self._otp_func())
        except Exception as e:
            self._otp_outcome = (False, e)
            raise
        self._otp_outcome = (True, value)
        to = self._otp_reply_to
        if to is not None and to.status is not DEAD:
            to.mbox.put((self._otp_reply_ref, value))
        raise ProcessExit("normal")


def bind(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    if not callable(fn):
        raise TypeError(f"a task runs a function, got {type(fn).__name__} {fn!r}")
    return functools.partial(fn, *args) if args else fn


def caller(what: str, hint: str) -> Proc:
    me = current_process()
    if me is None:
        raise NotInProcess(
            f"{what} sends the task's result to the calling process, but it was called "
            f"outside any process: {hint}"
        )
    return me


def task_spec(
    args: tuple[Any, ...], restart: RestartType = RestartType.TEMPORARY, shutdown: Shutdown = 5.0
) -> ChildSpec:
    return ChildSpec(
        id="task", actor_class=_AsyncTask, args=args, restart=restart, shutdown=shutdown
    )


async def _async(fn: Callable[..., Any], args: tuple[Any, ...], shutdown: Shutdown) -> TaskHandle:
    func = bind(fn, args)
    me = caller(
        "Task.async_()",
        "call it from inside a process (an actor, a GenServer handler, a task), or use "
        "Task.spawn(func, task_group) / TaskSupervisor.start_child(sup, func)",
    )
    ref = Ref()
    mark = me.mbox.mark()
    task = _AsyncTask()
    await spawn(task, (func, me, ref, me, None), {}, me.tg, owner=me, shutdown=shutdown)
    return TaskHandle(task, ref, me.pid, mark)


# ---------------------------------------------------------------- await and friends


def _owner(task: Any, what: str) -> Proc:
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
    me = current_process()
    if me is None or me.pid != task.owner:
        where = "outside any process" if me is None else f"from {me.pid!r}"
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


def _check_callable(func: Any, what: str) -> None:
    if callable(func):
        return
    if inspect.iscoroutine(func):
        func.close()  # never awaited: close it, so no "never awaited" warning follows
        raise TypeError(
            f"{what} takes a function, got a coroutine object: pass the function itself "
            "(and its arguments with functools.partial), not the result of calling it"
        )
    raise TypeError(f"{what} takes a function, got {type(func).__name__} {func!r}")


async def _receive(me: Proc, task: TaskHandle, timeout: float | None) -> Outcome | None:
    ref = task.ref
    assert ref is not None
    mark = task._mark
    if mark is not None and mark[0] != me.mbox.taken:
        mark = None  # stale: the process took messages since; a full scan, a full flush
    keys = _keys(ref)
    try:
        index, (value,) = await me.mbox.receive(keys, timeout, mark)
    except ReceiveTimeout:
        return None
    if index == 0:
        demonitor(ref)
        # the DOWN, if it came already, came after the mark, as the result did; a
        # removal after a valid mark leaves the messages before it where they were
        after = None if mark is None else (me.mbox.taken, mark[1])
        down = keys[1]
        me.mbox.remove_first(lambda m: down(m) is not None, after)
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
    timeout = check_timeout(timeout, "Task.await_()")
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
    timeout = check_timeout(timeout, "Task.yield_()")
    me = _owner(task, "yield_")
    return await _receive(me, task, timeout)


async def _many(
    tasks: Sequence[TaskHandle], timeout: float | None, what: str, *, stop_on_exit: bool
) -> list[Outcome | None]:
    """Receive the outcomes of ``tasks`` as they come, within one deadline."""
    timeout = check_timeout(timeout, f"Task.{what}()")
    tasks = list(tasks)
    if not tasks:
        return []
    me = _owner(tasks[0], what)
    for task in tasks[1:]:
        _owner(task, what)
    index: dict[Ref, int] = {}
    for i, task in enumerate(tasks):
        assert task.ref is not None
        if task.ref in index:
            raise TypeError(f"Task.{what}(): {task!r} is given twice")
        index[task.ref] = i

    def result(m: Any) -> tuple[Any, ...] | None:
        if type(m) is tuple and len(m) == 2 and type(m[0]) is Ref and m[0] in index:
            return (m[0], m[1])
        return None

    def down(m: Any) -> tuple[Any, ...] | None:
        if (
            type(m) is tuple
            and len(m) == 5
            and m[0] == "DOWN"
            and type(m[1]) is Ref
            and m[1] in index
            and m[2] == "process"
        ):
            return (m[1], m[4])
        return None

    key = (result, down)
    outcomes: list[Outcome | None] = [None] * len(tasks)
    left = len(tasks)
    deadline = None if timeout is None else time.monotonic() + timeout
    while left:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            which, (ref, value) = await me.mbox.receive(key, remaining)
        except ReceiveTimeout:
            break
        i = index.pop(ref)
        left -= 1
        if which == 0:
            demonitor(ref, flush=True)
            outcomes[i] = ("ok", value)
        else:
            outcomes[i] = ("exit", value)
            if stop_on_exit:
                break
    return outcomes


def _is_shutdown(reason: Any) -> bool:
    return type(reason) is str and reason in ("shutdown", "killed")


async def _shutdown_task(task: TaskHandle, timeout: Shutdown) -> Outcome | None:
    me = _owner(task, "shutdown")
    pcb = task._task._otp_pcb
    assert pcb is not None
    await stop(pcb, "shutdown", timeout)  # unlinks first: the owner is not hit
    got = await _receive(me, task, 0)
    if got is None or (got[0] == "exit" and _is_shutdown(got[1])):
        return None
    return got


# -------------------------------------------------------------------- async_stream


class _Slot(Hook):
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

    def attach(self, proc: Proc) -> bool:
        self.proc = proc
        if self.stream._closed:
            return False
        on_exit(proc, self)
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
        supervisor: Target | None = None,
        shutdown: Shutdown = 5.0,
        zip_input_on_exit: bool = False,
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
        if timeout is not None and not (
            isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout >= 0
        ):
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
        owner = current_process()
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
        self._timeout = None if timeout is None else seconds(timeout)  # huge: inf
        self._on_timeout = on_timeout
        self._sup = supervisor
        self._shutdown: Shutdown = shutdown
        self._zip = zip_input_on_exit
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
            await stop_all([(p, self._shutdown) for p in procs])
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
            await spawn(_AsyncTask(), args, {}, owner.tg, owner=owner, shutdown=self._shutdown)
        else:
            spec = task_spec(args, shutdown=self._shutdown)
            await supervisor_request(self._sup, "start_child", spec, timeout=5.0)

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
            outcome = proc.body._otp_outcome if proc is not None else _PENDING
            result: Outcome
            if slot.timed_out:
                result = ("exit", (slot.item, "timeout") if self._zip else "timeout")
            elif outcome is not _PENDING and outcome[0]:
                result = ("ok", outcome[1])
            elif self._sup is None:
                raise _exit_error(
                    proc.pid if proc is not None else None,
                    slot.reason,
                    f"Task.async_stream(): item #{slot.index} ({slot.item!r})",
                )
            else:
                result = ("exit", (slot.item, slot.reason) if self._zip else slot.reason)
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
                    proc.pid if proc is not None else None,
                    self._timeout,
                )
            slot.timed_out = True
            if proc is not None:
                proc.signal_exit(None, "kill")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._pending)} pending"
        return f"<TaskStream {state}, max_concurrency={self._max}>"
