"""Tasks: a process that runs one function and reports how it went.

:meth:`Task.spawn` runs ``func`` (sync or async) as a process and returns a
:class:`TaskHandle`; ``await handle.join()`` gives its return value or raises its
exception.  :meth:`Task.spawn_and_notify` also sends the outcome to a process as
``(success_message_name, task_pid, value)`` or ``(failure_message_name, task_pid,
exception)``.  A task that raises exits with that exception as its reason (logged
once, like any crash), so links, monitors and supervisors see an abnormal exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from ._actor import Actor, _task_group_target
from ._core._ids import PID, Ref
from ._core._process import Shutdown, _Exit, _maybe_await, start_process
from ._exceptions import ExitError

if TYPE_CHECKING:
    from ._task_supervisor import TaskStream

__all__ = ["Task", "TaskHandle"]

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

    __slots__ = ("_task", "owner", "pid", "ref")

    def __init__(self, task: Task, ref: Ref | None = None, owner: PID | None = None) -> None:
        self._task = task
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
        reason = await task._wait_dead()
        if task._outcome is not _PENDING:
            ok, value = task._outcome
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

    _outcome: Any = _PENDING
    # Class-level defaults: a task can exit before its init ran (refused at start),
    # and _die must still work then.
    _notify_pid: PID | None = None
    _success: Any = "$$success"
    _failure: Any = "$$failure"

    async def init(
        self,
        func: Callable[[], Any],
        notify_pid: PID | None = None,
        success_message_name: Any = "$$success",
        failure_message_name: Any = "$$failure",
    ) -> None:
        self._func = func
        self._notify_pid = notify_pid
        self._success = success_message_name
        self._failure = failure_message_name

    def _notify(self, tag: Any, value: Any) -> None:
        target = self._notify_pid
        if target is not None:
            proc = target._proc
            if proc is not None:
                proc._mbox.put((tag, self.pid, value))

    async def run(self, state: Any) -> Any:
        try:
            value = await _maybe_await(self._func())
        except Exception as e:
            self._outcome = (False, e)
            self._notify(self._failure, e)
            raise
        self._outcome = (True, value)
        self._notify(self._success, value)
        raise _Exit("normal")

    def _die(self, reason: Any) -> None:
        # Here rather than in terminate: _die runs on every exit, a kill included, so
        # the notified process always learns that the task ended without a result.
        if self._outcome is _PENDING and self._pid is not None:
            err = ExitError(
                f"task {self._pid!r} exited with reason {reason!r} before finishing",
                self._pid,
                reason,
            )
            self._notify(self._failure, err)
        super()._die(reason)

    @classmethod
    async def spawn(cls, func: Callable[[], Any], task_group: Any) -> TaskHandle:
        """Run ``func()`` (sync or async) as a task in ``task_group``.

        Args:
            func: a callable taking no arguments (use ``functools.partial`` for args).
            task_group: an anyio TaskGroup, or ``self.children`` of an actor (the task
                is then stopped when the actor exits).
        """
        tg, owner = _task_group_target(cls.__name__, task_group)
        task = cls()
        await start_process(task, (func,), {}, tg, owner=owner)
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
        tg, owner = _task_group_target(cls.__name__, task_group)
        task = cls()
        args = (func, parent_pid, success_message_name, failure_message_name)
        await start_process(task, args, {}, tg, owner=owner)
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
        from ._task_supervisor import _async

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
        from ._task_supervisor import _await

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
        from ._task_supervisor import _yield

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
        from ._task_supervisor import _shutdown_task

        return await _shutdown_task(task, timeout)

    @staticmethod
    def async_stream(
        enumerable: Iterable[Any] | AsyncIterable[Any],
        fn: Callable[[Any], Any],
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        timeout: float | None = 5.0,
        on_timeout: Literal["exit", "kill_task"] = "exit",
        supervisor: PID | str | None = None,
        shutdown: Shutdown = 5.0,
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

        Returns:
            A :class:`~anyotp.TaskStream` (an async iterator and context manager).

        Raises:
            NotInProcess: no ``supervisor`` and not called from a process.
            ValueError: ``max_concurrency`` < 1, a negative ``timeout``, or an
                unknown ``on_timeout``.
        """
        from ._task_supervisor import TaskStream

        return TaskStream(
            enumerable,
            fn,
            max_concurrency=max_concurrency,
            ordered=ordered,
            timeout=timeout,
            on_timeout=on_timeout,
            supervisor=supervisor,
            shutdown=shutdown,
        )


# Elixir's names, which are keywords in Python: getattr(Task, "async") is Task.async_.
setattr(Task, "async", Task.__dict__["async_"])
setattr(Task, "await", Task.__dict__["await_"])
