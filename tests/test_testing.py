"""anyotp.testing: helpers for tests of code built on anyotp."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import GenServer, NoProcess, exit_process
from anyotp.testing import wait_until, watch_exit

pytestmark = pytest.mark.anyio


class Idle(GenServer):
    pass


class TestWatchExit:
    async def test_the_reason_is_the_exit_reason_even_if_awaited_after_the_exit(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Idle.start(task_group=tg)
            watch = watch_exit(pid)
            exit_process(pid, "kill")
            assert await watch.reason() == "killed"
            assert await watch.reason() == "killed"  # cached

    async def test_watching_a_dead_process_raises_no_process(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Idle.start(task_group=tg)
            exit_process(pid, "kill")
            await watch_exit(pid).reason()
            with pytest.raises(NoProcess, match="not alive"):
                watch_exit(pid)

    async def test_a_process_that_does_not_exit_times_out(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Idle.start(task_group=tg)
            with pytest.raises(TimeoutError, match=r"did not exit within 0\.01 s"):
                await watch_exit(pid).reason(timeout=0.01)
            tg.cancel_scope.cancel()


class TestWaitUntil:
    async def test_returns_the_first_truthy_value_of_a_sync_or_async_predicate(self) -> None:
        calls: list[int] = []

        def sync_pred() -> Any:
            calls.append(1)
            return len(calls) >= 3 and "done"

        async def async_pred() -> bool:
            return True

        assert await wait_until(sync_pred) == "done"
        assert await wait_until(async_pred) is True

    async def test_times_out_naming_what_it_waited_for(self) -> None:
        with pytest.raises(TimeoutError, match="the moon did not become true"):
            await wait_until(lambda: False, timeout=0.02, what="the moon")
