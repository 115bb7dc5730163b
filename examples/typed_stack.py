"""Typed processes: ``GenServer[State]``, ``Agent[T]`` and the ways to name a process.

CI checks this file with ``mypy --strict``: the state type given to ``GenServer``
types ``init``'s result and the ``state`` every callback takes and returns, and a
:data:`~anyotp.Target` (a PID, a registered name, ``Via(registry, key)``,
``("via", registry, key)``) is accepted wherever a process is named.

Run::

    python examples/typed_stack.py          # or: python examples/typed_stack.py trio
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from anyotp import (
    Agent,
    Directive,
    From,
    GenServer,
    NoReply,
    Registry,
    Stop,
    Target,
    Via,
    call,
    cast,
    send,
)


class Stack(GenServer[list[int]]):
    """A stack of ints: ``init`` returns the state, every callback gets a ``list[int]``."""

    async def init(self, *items: int) -> list[int]:
        return list(items)

    async def handle_call(
        self, request: str, from_: From, state: list[int]
    ) -> tuple[int | None, list[int]] | Directive:
        match request:
            case "pop":
                return (state[0], state[1:]) if state else (None, state)
            case "size":
                return len(state), state
            case "stop":
                return Stop("normal", reply=len(state))
        raise ValueError(f"Stack: unknown call {request!r}")

    async def handle_cast(self, request: tuple[str, int], state: list[int]) -> list[int]:
        _, item = request  # ("push", item)
        return [item, *state]

    async def handle_info(self, message: Any, state: list[int]) -> list[int] | Directive:
        if message == "clear":
            return NoReply([])  # a Directive, typed like the plain state
        return state


class Hits(Agent[int]):
    """An Agent whose value is an int."""

    async def init(self) -> int:
        return 0


async def push_all(stack: Target, items: list[int]) -> None:
    """Any Target names the stack: a PID, a name or a via-name."""
    for item in items:
        await cast(stack, ("push", item))


async def main() -> None:
    async with anyio.create_task_group() as tg:
        await Registry.start(keys="unique", task_group=tg, name="names")
        pid = await Stack.start(1, task_group=tg, name=Via("names", "stack"))
        await push_all(pid, [2])
        await push_all(Via("names", "stack"), [3])
        await push_all(("via", "names", "stack"), [4])
        print("pop:", await call(Via("names", "stack"), "pop"))
        print("pop:", await call(("via", "names", "stack"), "pop"))

        await Stack.start(task_group=tg, name="plain")
        await cast("plain", ("push", 7))
        await send("plain", "clear")  # handle_info
        print("size after clear:", await call("plain", "size"))

        hits = await Hits.start(task_group=tg)
        await Agent.update(hits, lambda n: n + 1)
        doubled: int = await Agent.get(hits, lambda n: n * 2)
        print("hits doubled:", doubled)

        print("stopped with", await call(pid, "stop"), "items left")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
