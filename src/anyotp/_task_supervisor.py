"""TaskSupervisor: a DynamicSupervisor for tasks, like Elixir's ``Task.Supervisor``.

See :mod:`anyotp._task` for Elixir's Task API (``Task.async_``, ``await_``,
``async_stream``), which runs its tasks under a TaskSupervisor when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._child_spec import ChildSpec, RestartType
from ._core import PID, Ref, Shutdown, Target
from ._dynamic_supervisor import DynamicSupervisor
from ._task import Hook, TaskHandle, bind, caller, task_spec

__all__ = ["TaskSupervisor"]


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
        sup: Target,
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
        spec = task_spec((bind(fn, args), None, None, None, None), restart, shutdown)
        return await DynamicSupervisor.start_child(sup, spec, timeout=timeout)

    @staticmethod
    async def _start_async(
        sup: Target,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        link: bool,
        shutdown: Shutdown,
        timeout: float | None,
        what: str,
    ) -> TaskHandle:
        func = bind(fn, args)
        me = caller(
            what,
            "call it from inside a process, or use TaskSupervisor.start_child(sup, fn) "
            "(fire and forget) or Task.async_stream(..., supervisor=sup)",
        )
        ref = Ref()
        mark = me.mbox.mark()
        hook = Hook()
        spec = task_spec((func, me, ref, me if link else None, hook), shutdown=shutdown)
        await DynamicSupervisor.start_child(sup, spec, timeout=timeout)
        assert hook.proc is not None
        return TaskHandle(hook.proc.body, ref, me.pid, mark)

    @staticmethod
    async def async_nolink(
        sup: Target,
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
        sup: Target,
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
