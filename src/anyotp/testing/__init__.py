"""Helpers for testing code built on anyotp (and for anyotp's own tests).

Nothing in the library imports this module.

* :func:`watch_exit` starts watching a process *now* and lets you await its exit
  reason later, so a test never races the exit it wants to observe;
* :func:`wait_until` polls a condition with a deadline instead of sleeping a fixed time.

Example::

    watch = watch_exit(pid)
    exit_process(pid, "kill")
    assert await watch.reason() == "killed"
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._core import (
    DEAD,
    PID,
    TIMEOUT,
    DeathWatch,
    Proc,
    check_timeout,
    current_loop,
    on_exit,
    route,
)
from .._exceptions import NoProcess, NotInProcess

__all__ = ["ExitWatch", "wait_until", "watch_exit"]


class ExitWatch:
    """A watch on one process's exit, made by :func:`watch_exit`.

    Attributes:
        pid: the watched process.
    """

    __slots__ = ("_hook", "_proc", "_reason", "_waiter", "pid")

    def __init__(self, pid: PID) -> None:
        proc = route(pid, "watch_exit()")
        if type(proc) is not Proc:
            raise NoProcess(f"watch_exit({pid!r}): the process is not alive", pid)
        loop = current_loop()
        if loop is None:
            raise NotInProcess("watch_exit() needs a running event loop")
        self.pid: PID = pid
        self._reason: Any = TIMEOUT
        self._proc = proc
        self._waiter = loop.new_waiter()
        self._hook = DeathWatch(self._waiter)
        on_exit(proc, self._hook)

    async def reason(self, timeout: float | None = 5.0) -> Any:
        """Wait until the process has exited and return its exit reason.

        Args:
            timeout: seconds to wait; None waits forever.

        Raises:
            TimeoutError: the process is still alive after ``timeout`` seconds.
        """
        limit = check_timeout(timeout, "ExitWatch.reason()")
        if self._reason is TIMEOUT:
            got = await self._waiter.wait(limit)
            if got is TIMEOUT:
                # a waiter that timed out is spent: the hook fills a fresh one (or the
                # process died just now, on another thread)
                loop = current_loop()
                assert loop is not None
                self._hook.waiter = self._waiter = loop.new_waiter()
                if self._proc.status is DEAD:
                    self._reason = self._proc.exit_reason
                raise TimeoutError(f"{self.pid!r} did not exit within {timeout} s")
            self._reason = got
        return self._reason


def watch_exit(pid: PID) -> ExitWatch:
    """Start watching ``pid`` now; ``await watch.reason()`` gives its exit reason.

    Like a monitor, without needing a process to receive the DOWN message.

    Raises:
        NoProcess: ``pid`` is not alive (watch before you cause the exit).
    """
    return ExitWatch(pid)


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,
    interval: float = 0.005,
    what: str = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value; return it.

    Args:
        predicate: the condition; called every ``interval`` seconds.
        timeout: seconds before giving up.
        interval: seconds between polls.
        what: a description for the timeout message.

    Raises:
        TimeoutError: still falsy after ``timeout`` seconds.
    """
    limit = check_timeout(timeout, "wait_until()")
    try:
        with anyio.fail_after(limit):
            while True:
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                await anyio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(
            f"{what or repr(predicate)} did not become true within {timeout} s"
        ) from None
