"""Tasks: a process that runs one function and reports how it went.

:meth:`Task.spawn` runs ``func`` (sync or async) as a process and returns a
:class:`TaskHandle`; ``await handle.join()`` gives its return value or raises its
exception.  :meth:`Task.spawn_and_notify` also sends the outcome to a process as
``(success_message_name, task_pid, value)`` or ``(failure_message_name, task_pid,
exception)``.  A task that raises exits with that exception as its reason (logged
once, like any crash), so links, monitors and supervisors see an abnormal exit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._actor import Actor, _task_group_target
from ._core._ids import PID
from ._core._process import _Exit, _maybe_await, start_process
from ._exceptions import ExitError

__all__ = ["Task", "TaskHandle"]

_PENDING: Any = object()


class TaskHandle:
    """Handle to a running :class:`Task`.

    Attributes:
        pid: the task's PID.
    """

    __slots__ = ("_task", "pid")

    def __init__(self, task: Task) -> None:
        self._task = task
        self.pid: PID = task.pid

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

    async def terminate(self, reason: Any, state: Any) -> None:
        if self._outcome is _PENDING:
            self._outcome_reason = reason
            err = ExitError(f"task {self.pid!r} exited with reason {reason!r} before finishing")
            err.pid, err.reason = self.pid, reason
            self._notify(self._failure, err)

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
