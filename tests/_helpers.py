"""Helpers shared by several test modules (fixtures live in ``conftest.py``).

Test modules import them as ``from _helpers import ...``: pytest's default
``prepend`` import mode puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.abc

from anyotp import ANY, Actor, ReceiveTimeout, Task

T = TypeVar("T")

Body = Callable[[Actor, anyio.abc.TaskGroup], Awaitable[Any]]


class Outcome:
    """How a :class:`Script` body went: its value or its error, and when it was done."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Script(Actor):
    """Runs ``body(self, tg)`` once inside the actor, reports how it went, then stops."""

    async def init(self, body: Body, tg: anyio.abc.TaskGroup, outcome: Outcome) -> None:
        self._script = body
        self._script_tg = tg
        self._outcome = outcome

    async def run(self, state: Any) -> Any:
        try:
            self._outcome.value = await self._script(self, self._script_tg)
        except Exception as e:
            self._outcome.error = e
        finally:
            self._outcome.done.set()
        self.stop()


async def in_actor(body: Body) -> Any:
    """Run ``body(actor, tg)`` inside a fresh actor; return its result or raise its error.

    Processes the body starts in ``tg`` are stopped (task group cancelled) afterwards.
    """
    outcome = Outcome()
    async with anyio.create_task_group() as tg:
        await Script.start(body, tg, outcome, task_group=tg)
        with anyio.fail_after(5):
            await outcome.done.wait()
        tg.cancel_scope.cancel()
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


async def drain(actor: Actor) -> list[Any]:
    """Everything left in ``actor``'s mailbox, oldest first (empties it)."""
    out: list[Any] = []
    while True:
        try:
            out.append(await actor.receive((ANY, lambda m: m), timeout=0))
        except ReceiveTimeout:
            return out


async def in_process(body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` inside a process (a Task.spawn task) and return its result."""
    async with anyio.create_task_group() as tg:
        handle = await Task.spawn(body, tg)
    result: T = await handle.join()  # the task group waited for it: raises outside it
    return result


def boom(message: str = "boom") -> None:
    """A task body that fails with ``ValueError(message)``."""
    raise ValueError(message)
