"""Helpers shared by several test modules (fixtures live in ``conftest.py``).

Test modules import them as ``from _helpers import ...``: pytest's default
``prepend`` import mode puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from anyotp import Task

T = TypeVar("T")


async def in_process(body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` inside a process (a Task.spawn task) and return its result."""
    async with anyio.create_task_group() as tg:
        handle = await Task.spawn(body, tg)
    result: T = await handle.join()  # the task group waited for it: raises outside it
    return result


def boom(message: str = "boom") -> None:
    """A task body that fails with ``ValueError(message)``."""
    raise ValueError(message)
