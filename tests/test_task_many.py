"""Task.await_many, Task.yield_many and async_stream(zip_input_on_exit=True)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from _helpers import boom, in_process
from anyotp import (
    ExitError,
    NotInProcess,
    Task,
    TaskSupervisor,
    TaskTimeout,
    exit_process,
    is_alive,
    process_flag,
)
from anyotp.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("quiet_crash_logs")]


async def value_after(x: Any, gate: anyio.Event | None = None) -> Any:
    if gate is not None:
        await gate.wait()
    return x


class TestAwaitMany:
    async def test_await_many_returns_the_results_in_the_order_of_the_tasks(self) -> None:
        async def body() -> list[Any]:
            gate = anyio.Event()
            first = await Task.async_(value_after, "a", gate)  # finishes last
            second = await Task.async_(value_after, "b")
            third = await Task.async_(value_after, "c")
            await Task.async_(gate.set)
            return await Task.await_many([first, second, third])

        assert await in_process(body) == ["a", "b", "c"]

    async def test_await_many_of_no_tasks_is_an_empty_list(self) -> None:
        async def body() -> list[Any]:
            return await Task.await_many([])

        assert await in_process(body) == []

    async def test_await_many_raises_the_first_failure_without_waiting_for_the_rest(
        self,
    ) -> None:
        async def body() -> str:
            process_flag("trap_exit", True)  # the linked task's crash must not kill us
            slow = await Task.async_(anyio.sleep_forever)
            bad = await Task.async_(boom, "bad task")
            with pytest.raises(ValueError, match="bad task"):
                await Task.await_many([slow, bad], timeout=None)
            await Task.shutdown(slow, "brutal_kill")
            return "raised"

        assert await in_process(body) == "raised"

    async def test_await_many_raises_exiterror_for_a_task_killed_without_a_result(
        self,
    ) -> None:
        async def body() -> Any:
            process_flag("trap_exit", True)
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                task = await TaskSupervisor.async_nolink(sup, anyio.sleep_forever)
                exit_process(task.pid, "kill")
                with pytest.raises(ExitError) as info:
                    await Task.await_many([task])
                tg.cancel_scope.cancel()
            return info.value.reason

        assert await in_process(body) == "killed"

    async def test_await_many_times_out_with_tasktimeout_and_leaves_tasks_running(
        self,
    ) -> None:
        async def body() -> bool:
            quick = await Task.async_(value_after, 1)
            slow = await Task.async_(anyio.sleep_forever)
            await wait_until(lambda: not is_alive(quick.pid))  # its result is in the mailbox
            with pytest.raises(TaskTimeout, match=r"1 result\(s\) missing after 0.05 s") as info:
                await Task.await_many([quick, slow], timeout=0.05)
            assert info.value.task is slow
            assert await Task.yield_(slow, 0) is None  # still running
            await Task.shutdown(slow, "brutal_kill")
            return True

        assert await in_process(body)

    async def test_await_many_outside_the_owner_raises_notinprocess(self) -> None:
        async def body() -> Any:
            return await Task.async_(value_after, 1)

        task = await in_process(body)
        with pytest.raises(NotInProcess, match=r"only the task's owner"):
            await Task.await_many([task])


class TestYieldMany:
    async def test_yield_many_gives_ok_exit_or_none_per_task_in_order(self) -> None:
        async def body() -> list[Any]:
            process_flag("trap_exit", True)
            ok = await Task.async_(value_after, 7)
            bad = await Task.async_(boom, "no")
            slow = await Task.async_(anyio.sleep_forever)
            await wait_until(lambda: not is_alive(ok.pid) and not is_alive(bad.pid))
            got = await Task.yield_many([ok, bad, slow], timeout=0.05)
            await Task.shutdown(slow, "brutal_kill")
            return got

        ok, bad, slow = await in_process(body)
        assert ok == ("ok", 7)
        assert bad[0] == "exit"
        assert isinstance(bad[1], ValueError)
        assert slow is None

    async def test_yield_many_returns_as_soon_as_every_task_finished(self) -> None:
        async def body() -> list[Any]:
            tasks = [await Task.async_(value_after, i) for i in range(5)]
            with anyio.fail_after(5):  # far below the infinite timeout
                return await Task.yield_many(tasks, timeout=None)

        assert await in_process(body) == [("ok", i) for i in range(5)]

    async def test_yield_many_rejects_what_is_not_a_task_handle(self) -> None:
        async def body() -> str:
            with pytest.raises(TypeError, match=r"takes a TaskHandle"):
                await Task.yield_many(["nope"])  # type: ignore[list-item]
            return "ok"

        assert await in_process(body) == "ok"


class TestAsyncStreamZipInput:
    async def test_zip_input_on_exit_pairs_the_failed_item_with_its_reason(self) -> None:
        async def work(i: int) -> int:
            if i == 1:
                raise ValueError("one")
            return i

        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)
            stream = Task.async_stream(range(3), work, supervisor=sup, zip_input_on_exit=True)
            got = [r async for r in stream]
            tg.cancel_scope.cancel()
        assert got[0] == ("ok", 0)
        status, (item, reason) = got[1]
        assert (status, item) == ("exit", 1)
        assert isinstance(reason, ValueError)
        assert got[2] == ("ok", 2)

    async def test_zip_input_on_exit_pairs_a_timed_out_item_with_timeout(self) -> None:
        async def work(i: int) -> int:
            if i == 1:
                await anyio.sleep_forever()
            return i

        async def body() -> list[Any]:
            stream = Task.async_stream(
                range(3), work, timeout=0.05, on_timeout="kill_task", zip_input_on_exit=True
            )
            return [r async for r in stream]

        assert await in_process(body) == [("ok", 0), ("exit", (1, "timeout")), ("ok", 2)]
