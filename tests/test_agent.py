"""Agent: a process wrapping a value."""

from __future__ import annotations

import anyio
import pytest

from anyotp import Agent, CallExit

pytestmark = pytest.mark.anyio


class TestAgent:
    async def test_get_update_get_and_update_and_cast(self) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: {"hits": 0}, task_group=tg)
            await Agent.update(agent, lambda s: {"hits": s["hits"] + 1})
            Agent.cast_nowait(agent, lambda s: {"hits": s["hits"] + 1})
            assert await Agent.get(agent, lambda s: s["hits"]) == 2
            assert await Agent.get_and_update(agent, lambda s: (s["hits"], {"hits": 0})) == 2
            assert await Agent.get(agent, lambda s: s) == {"hits": 0}
            tg.cancel_scope.cancel()

    async def test_async_functions_are_awaited(self) -> None:
        async def initial() -> int:
            return 41

        async def incr(value: int) -> int:
            return value + 1

        async with anyio.create_task_group() as tg:
            await Agent.start(initial, task_group=tg, name="answer")
            await Agent.update("answer", incr)
            assert await Agent.get("answer", lambda v: v) == 42
            tg.cancel_scope.cancel()

    async def test_a_raising_function_crashes_the_agent_and_the_caller_gets_call_exit(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: 1, task_group=tg)
            with pytest.raises(CallExit) as info:
                await Agent.get(agent, lambda v: v / 0)
            assert isinstance(info.value.reason, ZeroDivisionError)

    async def test_get_and_update_must_return_a_pair(self) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: 1, task_group=tg)
            with pytest.raises(CallExit, match="must return"):
                await Agent.get_and_update(agent, lambda v: v)

    async def test_agent_cast_can_be_awaited_like_anyotp_cast(self) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: 1, task_group=tg)
            await Agent.cast(agent, lambda v: v + 1)
            assert await Agent.get(agent, lambda v: v) == 2
            tg.cancel_scope.cancel()
