"""Elixir's Task API: async_/await_, yield_, shutdown, TaskSupervisor, async_stream."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from _helpers import boom, in_process
from anyotp import (
    ExitError,
    From,
    GenServer,
    NotInProcess,
    RestartType,
    SupervisorError,
    Task,
    TaskHandle,
    TaskStream,
    TaskSupervisor,
    TaskTimeout,
    call,
    cast,
    cast_nowait,
    demonitor,
    is_alive,
    process_info,
    processes,
    self_pid,
)
from anyotp.testing import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("quiet_crash_logs")]

# --------------------------------------------------------------------------- helpers


async def wait_dead(*pids: Any) -> None:
    """Deadline-bounded poll until none of ``pids`` is alive."""
    await wait_until(lambda: not any(is_alive(p) for p in pids), timeout=2, what=f"{pids!r} dead")


async def double(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * x


# ---------------------------------------------------------------------- async/await


class TestAsyncAwait:
    async def test_await_returns_the_result_of_a_sync_or_async_function(self) -> None:
        async def body() -> list[Any]:
            a = await Task.async_(double, 21)
            b = await Task.async_(lambda x, y: x + y, 1, 2)
            return [await Task.await_(a), await Task.await_(b)]

        assert await in_process(body) == [42, 3]

    async def test_the_handle_names_the_task_its_ref_and_its_owner(self) -> None:
        async def body() -> None:
            task = await Task.async_(double, 1)
            assert isinstance(task, TaskHandle)
            assert task.owner == self_pid()
            assert task.ref is not None
            assert task.pid != self_pid()
            await Task.await_(task)

        await in_process(body)

    async def test_async_and_await_are_aliases_for_async_and_await_(self) -> None:
        assert getattr(Task, "async") is Task.async_
        assert getattr(Task, "await") is Task.await_
        assert getattr(TaskSupervisor, "async") is TaskSupervisor.async_

        async def body() -> int:
            task = await getattr(Task, "async")(double, 5)
            result: int = await getattr(Task, "await")(task)
            return result

        assert await in_process(body) == 10

    async def test_async_outside_a_process_raises_not_in_process(self) -> None:
        with pytest.raises(NotInProcess, match=r"Task\.async_\(\).*outside any process"):
            await Task.async_(double, 1)

    async def test_await_timeout_raises_task_timeout_and_leaves_the_task_running(self) -> None:
        async def body() -> None:
            gate = anyio.Event()

            async def slow() -> str:
                await gate.wait()
                return "late"

            task = await Task.async_(slow)
            with pytest.raises(TaskTimeout, match=r"timed out: no result in 0\.01 s") as info:
                await Task.await_(task, timeout=0.01)
            assert isinstance(info.value, TimeoutError)
            assert info.value.task is task
            assert info.value.timeout == 0.01
            assert is_alive(task.pid)
            gate.set()
            assert await Task.await_(task) == "late"

        await in_process(body)

    async def test_a_crashing_linked_task_crashes_its_caller(self) -> None:
        pids: list[Any] = []

        async def body() -> None:
            task = await Task.async_(boom, "kaput")
            pids.append(task.pid)
            await anyio.sleep_forever()

        with pytest.raises(ExitError) as info:
            await in_process(body)
        assert isinstance(info.value.reason, ValueError)
        assert str(info.value.reason) == "kaput"

    async def test_a_task_is_stopped_when_its_owner_exits(self) -> None:
        pids: list[Any] = []
        stopped = anyio.Event()

        async def forever() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                stopped.set()

        async def body() -> None:
            task = await Task.async_(forever)
            pids.append(task.pid)

        await in_process(body)
        assert stopped.is_set()
        assert not is_alive(pids[0])

    async def test_await_from_another_process_than_the_owner_raises(self) -> None:
        async def body() -> None:
            task = await Task.async_(double, 1)

            async def other() -> None:
                with pytest.raises(NotInProcess, match="only the task's owner"):
                    await Task.await_(task)

            await in_process(other)
            await Task.await_(task)

        await in_process(body)

    async def test_await_on_a_handle_from_spawn_raises_type_error_naming_join(self) -> None:
        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(functools.partial(double, 1), tg)
            with pytest.raises(TypeError, match=r"Task\.spawn\(\).*handle\.join\(\)"):
                await Task.await_(handle)
            assert await handle.join() == 2

    async def test_a_genserver_can_take_the_result_in_handle_info(self) -> None:
        class Fetcher(GenServer):
            async def init(self) -> dict[str, Any]:
                return {}

            async def handle_cast(self, request: Any, state: Any) -> Any:
                task = await Task.async_(double, request)
                return {**state, "ref": task.ref}

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return state.get("result"), state

            async def handle_info(self, message: Any, state: Any) -> Any:
                match message:
                    case (ref, result) if ref == state.get("ref"):
                        demonitor(ref, flush=True)
                        return {**state, "result": result}
                return state

        async with anyio.create_task_group() as tg:
            pid = await Fetcher.start(task_group=tg)
            await cast(pid, 21)
            await wait_until(lambda: call(pid, "result"), timeout=2, what="the task's result")
            assert await call(pid, "result") == 42
            tg.cancel_scope.cancel()

    async def test_an_await_after_the_server_took_other_messages_still_finds_the_result(
        self,
    ) -> None:
        # The task's start marks where the mailbox ended (Mailbox.mark); the casts
        # queued behind the start are taken before the await.  Those takes must move
        # the mark (the GenServer loop bumps Mailbox.taken once a mark exists), or the
        # await would look past where its result lands and time out; and the await,
        # on a mark gone stale, must still flush the task's DOWN from the whole
        # mailbox, or it reaches handle_info.
        infos: list[Any] = []

        class Starter(GenServer):
            async def init(self) -> Any:
                return None

            async def handle_cast(self, request: Any, state: Any) -> Any:
                if request == "start":
                    return await Task.async_(double, 21)
                return state  # "noise"

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                if request == "await":
                    # the task has ended: its result and its DOWN are both queued
                    await wait_until(
                        lambda: process_info(self_pid())["message_queue_len"] >= 2,  # type: ignore[index]
                        what="the task's result and DOWN",
                    )
                    return await Task.await_(state, timeout=5), state
                return None, state

            async def handle_info(self, message: Any, state: Any) -> Any:
                infos.append(message)
                return state

        async with anyio.create_task_group() as tg:
            pid = await Starter.start(task_group=tg)
            proc = pid._proc
            assert proc is not None
            assert not proc.mbox.marked  # no mark before a task
            # queued together, so the server takes them in one go without yielding
            for request in ["start", "noise", "noise", "noise"]:
                cast_nowait(pid, request)
            assert await call(pid, "await", timeout=5) == 42
            assert proc.mbox.marked
            await call(pid, "sync", timeout=5)  # anything left was handled by now
            assert infos == []
            tg.cancel_scope.cancel()


# -------------------------------------------------------------------- yield/shutdown


class TestYieldAndShutdown:
    async def test_yield_returns_none_while_the_task_runs_then_ok_and_the_value(self) -> None:
        async def body() -> None:
            gate = anyio.Event()

            async def gated() -> None:
                await gate.wait()
                # None is a result like any other: yield_ tells it from "not done"

            task = await Task.async_(gated)
            assert await Task.yield_(task, 0) is None
            assert await Task.yield_(task, 0.01) is None
            gate.set()
            assert await Task.yield_(task, 1.0) == ("ok", None)
            assert not is_alive(task.pid)

        await in_process(body)

    async def test_shutdown_stops_a_running_task_and_returns_none(self) -> None:
        async def body() -> None:
            stopped = anyio.Event()

            async def forever() -> None:
                try:
                    await anyio.sleep_forever()
                finally:
                    stopped.set()

            task = await Task.async_(forever)
            assert await Task.shutdown(task) is None
            assert stopped.is_set()
            assert not is_alive(task.pid)
            # the owner was linked to the task, and survived its shutdown
            assert await Task.yield_(task, 0) is None

        await in_process(body)

    async def test_shutdown_returns_the_result_if_the_task_finished_meanwhile(self) -> None:
        async def body() -> None:
            task = await Task.async_(double, 4)
            await wait_dead(task.pid)
            assert await Task.shutdown(task) == ("ok", 8)

        await in_process(body)

    async def test_shutdown_with_brutal_kill_kills_at_once(self) -> None:
        async def body() -> None:
            cleaned = anyio.Event()

            async def forever() -> None:
                try:
                    await anyio.sleep_forever()
                finally:
                    cleaned.set()

            task = await Task.async_(forever)
            assert await Task.shutdown(task, "brutal_kill") is None
            assert not is_alive(task.pid)

        await in_process(body)

    async def test_shutdown_of_a_task_that_already_failed_returns_its_exit(self) -> None:
        async def body() -> None:
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                task = await TaskSupervisor.async_nolink(sup, boom, "early")
                await wait_dead(task.pid)
                got = await Task.shutdown(task)
                assert got is not None
                assert got[0] == "exit"
                assert str(got[1]) == "early"
                tg.cancel_scope.cancel()

        await in_process(body)


# -------------------------------------------------------------------- TaskSupervisor


class TestTaskSupervisor:
    async def test_async_nolink_crash_comes_back_from_await_without_hurting_the_caller(
        self,
    ) -> None:
        async def body() -> str:
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                task = await TaskSupervisor.async_nolink(sup, boom, "nolink")
                with pytest.raises(ValueError, match="nolink"):
                    await Task.await_(task)
                ok = await TaskSupervisor.async_nolink(sup, double, 3)
                assert await Task.await_(ok) == 6
                tg.cancel_scope.cancel()
            return "caller survived"

        assert await in_process(body) == "caller survived"

    async def test_yield_returns_exit_and_the_exception_for_a_failed_nolink_task(self) -> None:
        async def body() -> None:
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                task = await TaskSupervisor.async_nolink(sup, boom, "y")
                got = await Task.yield_(task, 1.0)
                assert got is not None
                assert got[0] == "exit"
                assert isinstance(got[1], ValueError)
                tg.cancel_scope.cancel()

        await in_process(body)

    async def test_await_raises_exit_error_for_a_task_killed_from_outside(self) -> None:
        async def body() -> None:
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                task = await TaskSupervisor.async_nolink(sup, anyio.sleep_forever)
                await TaskSupervisor.terminate_child(sup, task.pid)
                with pytest.raises(ExitError, match="exited with reason 'shutdown'") as info:
                    await Task.await_(task)
                assert info.value.reason == "shutdown"
                tg.cancel_scope.cancel()

        await in_process(body)

    async def test_a_nolink_task_outlives_its_caller_and_stops_with_the_supervisor(
        self,
    ) -> None:
        stopped = anyio.Event()

        async def forever() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                stopped.set()

        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)

            async def body() -> Any:
                return (await TaskSupervisor.async_nolink(sup, forever)).pid

            pid = await in_process(body)
            assert is_alive(pid)
            assert await TaskSupervisor.which_children(sup) != []
            tg.cancel_scope.cancel()
        assert stopped.is_set()

    async def test_supervised_async_links_the_task_to_the_caller(self) -> None:
        async def body() -> None:
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                await TaskSupervisor.async_(sup, boom, "linked")
                await anyio.sleep_forever()

        with pytest.raises(ExitError) as info:
            await in_process(body)
        assert str(info.value.reason) == "linked"

    async def test_async_nolink_outside_a_process_raises_not_in_process(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)
            with pytest.raises(NotInProcess, match="start_child"):
                await TaskSupervisor.async_nolink(sup, double, 1)
            tg.cancel_scope.cancel()

    async def test_start_child_runs_a_function_and_forgets_it(self) -> None:
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)
            pid = await TaskSupervisor.start_child(sup, done.set)
            with anyio.fail_after(2):
                await done.wait()
            await wait_dead(pid)
            assert await TaskSupervisor.which_children(sup) == []
            tg.cancel_scope.cancel()

    async def test_start_child_with_transient_restart_runs_a_failing_function_again(
        self,
    ) -> None:
        runs: list[int] = []
        done = anyio.Event()

        def flaky() -> None:
            runs.append(1)
            if len(runs) == 1:
                raise RuntimeError("first run fails")
            done.set()

        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)
            await TaskSupervisor.start_child(sup, flaky, restart=RestartType.TRANSIENT)
            with anyio.fail_after(2):
                await done.wait()
            assert len(runs) == 2
            tg.cancel_scope.cancel()

    async def test_max_children_limits_the_running_tasks(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg, max_children=1)
            await TaskSupervisor.start_child(sup, anyio.sleep_forever)
            with pytest.raises(SupervisorError, match="max_children reached"):
                await TaskSupervisor.start_child(sup, anyio.sleep_forever)
            tg.cancel_scope.cancel()

    async def test_tasks_are_stopped_concurrently_each_within_its_shutdown(self) -> None:
        # As for any DynamicSupervisor: five tasks that take 0.2 s to stop stop in
        # about one such period, not five.
        started = anyio.Event()
        running = 0

        async def slow_to_stop() -> None:
            nonlocal running
            running += 1
            if running == 5:
                started.set()
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.2)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                sup = await TaskSupervisor.start(task_group=tg)
                for _ in range(5):
                    await TaskSupervisor.start_child(sup, slow_to_stop, shutdown=2.0)
                await started.wait()
                began = anyio.current_time()
                tg.cancel_scope.cancel()
            elapsed = anyio.current_time() - began
        assert 0.2 <= elapsed < 0.2 * 3, f"5 tasks took {elapsed:.2f} s to stop"


# ---------------------------------------------------------------------- async_stream


class Gauge:
    """Counts tasks running ``fn`` right now and the most seen at once.

    The first tasks wait at a barrier until ``fill`` of them run at once, so the
    most seen reaches ``fill`` however slowly the tasks start; once it opens,
    every task passes straight through.
    """

    def __init__(self, fill: int) -> None:
        self.fill = fill
        self.full = anyio.Event()
        self.now = 0
        self.most = 0
        self.processes_most = 0

    async def run(self, x: int) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        self.processes_most = max(self.processes_most, len(processes()) - 1)  # - the caller
        if self.now >= self.fill:
            self.full.set()
        try:
            await self.full.wait()
            await anyio.lowlevel.checkpoint()  # the work: the others get to run meanwhile
            return x * x
        finally:
            self.now -= 1


async def drain(stream: TaskStream, into: list[Any]) -> None:
    """Append every result of ``stream`` to ``into`` (which keeps them if it raises)."""
    async for result in stream:
        into.append(result)


def chain(n: int) -> tuple[list[anyio.Event], Callable[[int], Awaitable[int]]]:
    """Tasks that finish in reverse input order: item i waits for item i + 1."""
    events = [anyio.Event() for _ in range(n)]
    events[-1].set()

    async def fn(i: int) -> int:
        await events[i].wait()
        if i > 0:
            events[i - 1].set()
        return i

    return events, fn


class TestAsyncStream:
    async def test_ordered_stream_yields_ok_results_in_input_order(self) -> None:
        async def body() -> list[Any]:
            _, fn = chain(5)
            return [r async for r in Task.async_stream(range(5), fn, max_concurrency=5)]

        assert await in_process(body) == [("ok", i) for i in range(5)]

    async def test_unordered_stream_yields_results_in_completion_order(self) -> None:
        async def body() -> list[Any]:
            _, fn = chain(5)
            stream = Task.async_stream(range(5), fn, max_concurrency=5, ordered=False)
            return [r async for r in stream]

        assert await in_process(body) == [("ok", i) for i in reversed(range(5))]

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_never_more_tasks_alive_than_max_concurrency(self, ordered: bool) -> None:
        gauge = Gauge(fill=3)

        async def body() -> list[Any]:
            stream = Task.async_stream(range(20), gauge.run, max_concurrency=3, ordered=ordered)
            return [v async for _, v in stream]

        results = await in_process(body)
        assert sorted(results) == [x * x for x in range(20)]
        assert gauge.most == 3
        assert gauge.processes_most <= 3

    async def test_input_is_consumed_lazily_so_an_infinite_generator_works(self) -> None:
        pulled: list[int] = []

        def naturals() -> Iterator[int]:
            n = 0
            while True:
                pulled.append(n)
                yield n
                n += 1

        async def body() -> list[Any]:
            got = []
            async with Task.async_stream(naturals(), double, max_concurrency=2) as stream:
                async for status, value in stream:
                    got.append((status, value))
                    if len(got) == 5:
                        break
            return got

        assert await in_process(body) == [("ok", 2 * i) for i in range(5)]
        assert len(pulled) <= 5 + 2

    async def test_async_iterables_are_consumed_too(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for i in range(4):
                await anyio.lowlevel.checkpoint()
                yield i

        async def body() -> list[Any]:
            return [v async for _, v in Task.async_stream(numbers(), double, max_concurrency=2)]

        assert await in_process(body) == [0, 2, 4, 6]

    async def test_breaking_out_early_stops_the_running_tasks(self) -> None:
        stopped: list[int] = []
        pids: list[Any] = []

        async def work(i: int) -> int:
            pids.append(self_pid())
            if i == 0:
                return 0
            try:
                await anyio.sleep_forever()
            finally:
                stopped.append(i)
            return i  # pragma: no cover

        async def body() -> None:
            async with contextlib.aclosing(
                Task.async_stream(range(100), work, max_concurrency=4)
            ) as stream:
                async for result in stream:
                    assert result == ("ok", 0)
                    break
            # items 0-3 ran; item 4 was never taken: the slot item 0 freed is refilled
            # only when the next result is asked for
            assert sorted(stopped) == [1, 2, 3]
            assert len(pids) == 4
            assert not any(is_alive(p) for p in pids)

        await in_process(body)

    async def test_a_task_that_times_out_raises_task_timeout_and_stops_the_others(
        self,
    ) -> None:
        stopped: list[int] = []

        async def work(i: int) -> int:
            if i == 1:
                try:
                    await anyio.sleep_forever()
                finally:
                    stopped.append(i)
            return i

        async def body() -> list[Any]:
            got: list[Any] = []
            stream = Task.async_stream(range(3), work, timeout=0.05)
            with pytest.raises(TaskTimeout, match=r"item #1 \(1\).*timeout=0\.05 s") as info:
                await drain(stream, got)
            assert isinstance(info.value, TimeoutError)
            assert info.value.timeout == 0.05
            return got

        assert await in_process(body) == [("ok", 0)]
        assert stopped == [1]

    async def test_on_timeout_kill_task_yields_exit_timeout_for_that_item_only(self) -> None:
        async def work(i: int) -> int:
            if i == 1:
                await anyio.sleep_forever()
            return i

        async def body() -> list[Any]:
            stream = Task.async_stream(range(3), work, timeout=0.05, on_timeout="kill_task")
            return [r async for r in stream]

        assert await in_process(body) == [("ok", 0), ("exit", "timeout"), ("ok", 2)]

    async def test_a_task_that_raises_makes_the_iterator_raise_it(self) -> None:
        async def work(i: int) -> int:
            if i == 2:
                raise ValueError(f"bad item {i}")
            return i

        async def body() -> list[Any]:
            got: list[Any] = []
            stream = Task.async_stream(range(10), work, max_concurrency=2)
            with pytest.raises(ValueError, match="bad item 2"):
                await drain(stream, got)
            return got

        # the failure surfaces as soon as it is seen, like a linked crash: results not
        # yet yielded (here maybe item 1's) are dropped
        assert await in_process(body) in ([("ok", 0)], [("ok", 0), ("ok", 1)])

    async def test_under_a_supervisor_failures_are_yielded_and_no_process_is_needed(
        self,
    ) -> None:
        async def work(i: int) -> int:
            if i == 1:
                raise ValueError("one")
            return i

        async with anyio.create_task_group() as tg:
            sup = await TaskSupervisor.start(task_group=tg)
            got = [r async for r in Task.async_stream(range(3), work, supervisor=sup)]
            assert got[0] == ("ok", 0)
            assert got[1][0] == "exit"
            assert isinstance(got[1][1], ValueError)
            assert got[2] == ("ok", 2)
            assert await TaskSupervisor.which_children(sup) == []
            tg.cancel_scope.cancel()

    async def test_outside_a_process_without_supervisor_raises_not_in_process(self) -> None:
        with pytest.raises(NotInProcess, match="supervisor="):
            Task.async_stream(range(3), double)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"max_concurrency": 0}, "max_concurrency=0"),
            ({"timeout": -1}, "timeout=-1"),
            ({"on_timeout": "ignore"}, "on_timeout='ignore'"),
        ],
    )
    async def test_invalid_options_raise_value_error(
        self, options: dict[str, Any], message: str
    ) -> None:
        async def body() -> None:
            with pytest.raises(ValueError, match=message):
                Task.async_stream(range(3), double, **options)

        await in_process(body)

    async def test_an_exhausted_stream_stays_exhausted(self) -> None:
        async def body() -> list[Any]:
            stream = Task.async_stream([1], double)
            first = [r async for r in stream]
            second = [r async for r in stream]
            return [first, second]

        assert await in_process(body) == [[("ok", 2)], []]
