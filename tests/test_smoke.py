"""A first end-to-end check of the seed's Stack example on both backends."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import GenServer, call, cast

pytestmark = pytest.mark.anyio


class Stack(GenServer):
    async def init(self) -> Any:
        return []

    async def handle_call(self, request: Any, _from: Any, state: Any) -> Any:
        match request:
            case "pop":
                if not state:
                    return None, []
                val = state[0]
                return val, state[1:]
            case "peek":
                return state[0] if state else None, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        match request:
            case ("push", item):
                return [item, *state]


async def test_stack_example_from_the_seed_runs_as_written() -> None:
    async with anyio.create_task_group() as tg:
        pid = await Stack.start(task_group=tg)
        await cast(pid, ("push", 1))
        val = await call(pid, "pop")
        assert val == 1
        assert await call(pid, "peek") is None
        tg.cancel_scope.cancel()
