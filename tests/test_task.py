"""Task: run one function as a process; join its value or its error; notify a parent."""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
import pytest

import anyotp
from anyotp import (
    ANY,
    PID,
    Actor,
    ExitError,
    Task,
    TaskHandle,
    exit_process,
    is_alive,
)
from anyotp.testing import watch_exit

pytestmark = pytest.mark.anyio


class Collector(Actor):
    """Puts every message it receives into ``out`` (an anyio memory stream)."""

    async def init(self, out: Any) -> None:
        self.out = out

    async def run(self, state: Any) -> Any:
        msg = await self.receive((ANY, lambda m: m))
        await self.out.send(msg)
        return state


class TestSpawnAndJoin:
    async def test_join_returns_the_value_of_a_sync_function(self) -> None:
        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(lambda: 6 * 7, tg)
            assert isinstance(handle, TaskHandle)
            assert isinstance(handle.pid, PID)
            assert await handle.join() == 42
            tg.cancel_scope.cancel()

    async def test_join_returns_the_value_of_an_async_function(self) -> None:
        async def work() -> str:
            await anyio.lowlevel.checkpoint()
            return "done"

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, task_group=tg)
            assert await handle.join() == "done"
            tg.cancel_scope.cancel()

    async def test_arguments_are_bound_with_functools_partial(self) -> None:
        async def add(a: int, b: int) -> int:
            return a + b

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(functools.partial(add, 2, b=3), tg)
            assert await handle.join() == 5
            tg.cancel_scope.cancel()

    async def test_join_can_be_awaited_again_after_the_task_finished(self) -> None:
        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(lambda: "x", tg)
            assert await handle.join() == "x"
            assert await handle.join() == "x"
            assert not is_alive(handle.pid)
            tg.cancel_scope.cancel()

    async def test_join_from_several_waiters_gives_each_the_value(self) -> None:
        gate = anyio.Event()
        got: list[Any] = []

        async def work() -> int:
            await gate.wait()
            return 7

        async def joiner(handle: TaskHandle) -> None:
            got.append(await handle.join())

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            async with anyio.create_task_group() as joiners:
                for _ in range(3):
                    joiners.start_soon(joiner, handle)
                await anyio.lowlevel.checkpoint()
                gate.set()
            assert got == [7, 7, 7]
            tg.cancel_scope.cancel()

    async def test_the_task_exits_normally_after_returning(self) -> None:
        gate = anyio.Event()

        async def work() -> None:
            await gate.wait()

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            reason = watch_exit(handle.pid).reason
            gate.set()
            assert await reason() == "normal"
            tg.cancel_scope.cancel()

    async def test_spawn_without_a_task_group_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match="needs task_group="):
            await Task.spawn(lambda: None, None)


class TestFailure:
    async def test_join_raises_the_original_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL + 1, logger="anyotp")
        error = KeyError("missing")

        def work() -> None:
            raise error

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            with pytest.raises(KeyError) as info:
                await handle.join()
            assert info.value is error
            tg.cancel_scope.cancel()

    async def test_a_crashing_task_exits_with_its_exception_as_the_reason(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL + 1, logger="anyotp")
        gate = anyio.Event()

        async def work() -> None:
            await gate.wait()
            raise ValueError("bad input")

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            reason = watch_exit(handle.pid).reason
            gate.set()
            got = await reason()
            assert isinstance(got, ValueError)
            assert str(got) == "bad input"
            tg.cancel_scope.cancel()

    async def test_a_task_crash_is_logged_once_with_its_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="anyotp")

        def work() -> None:
            raise RuntimeError("task went wrong")

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            with pytest.raises(RuntimeError):
                await handle.join()
            errors = [
                r
                for r in caplog.records
                if r.name.startswith("anyotp") and r.levelno >= logging.ERROR
            ]
            assert len(errors) == 1
            assert "crashed" in errors[0].getMessage()
            assert "task went wrong" in errors[0].getMessage()
            assert errors[0].exc_info is not None
            tg.cancel_scope.cancel()

    async def test_a_task_crash_does_not_disturb_the_task_group_or_other_tasks(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL + 1, logger="anyotp")
        gate = anyio.Event()

        async def slow() -> str:
            await gate.wait()
            return "still fine"

        def bad() -> None:
            raise RuntimeError("x")

        async with anyio.create_task_group() as tg:
            survivor = await Task.spawn(slow, tg)
            with pytest.raises(RuntimeError):
                await (await Task.spawn(bad, tg)).join()
            gate.set()
            assert await survivor.join() == "still fine"
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize(("signal", "reason"), [("shutdown", "shutdown"), ("kill", "killed")])
    async def test_join_raises_exiterror_when_the_task_is_stopped_before_finishing(
        self, signal: str, reason: str
    ) -> None:
        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(anyio.sleep_forever, tg)
            exit_process(handle.pid, signal)
            with pytest.raises(ExitError, match=rf"exited with reason '{reason}' before") as info:
                await handle.join()
            assert info.value.pid == handle.pid
            assert info.value.reason == reason
            tg.cancel_scope.cancel()

    async def test_join_raises_exiterror_when_the_task_group_is_cancelled(self) -> None:
        outcome: list[BaseException] = []
        async with anyio.create_task_group() as outer:
            async with anyio.create_task_group() as tg:
                handle = await Task.spawn(anyio.sleep_forever, tg)
                tg.cancel_scope.cancel()
            try:
                await handle.join()
            except ExitError as e:
                outcome.append(e)
            outer.cancel_scope.cancel()
        [err] = outcome
        assert isinstance(err, ExitError)
        assert err.reason == "shutdown"


class TestOwnedTasks:
    async def test_a_task_spawned_into_an_actors_children_stops_when_the_actor_exits(
        self,
    ) -> None:
        handles: list[TaskHandle] = []

        class Owner(Actor):
            async def init(self) -> None:
                handles.append(await Task.spawn(anyio.sleep_forever, self.children))

            async def run(self, state: Any) -> Any:
                return await self.receive(("stop", lambda: self.stop()))

        async with anyio.create_task_group() as tg:
            owner = await Owner.start(task_group=tg)
            [handle] = handles
            assert is_alive(handle.pid)
            owner_down = watch_exit(owner).reason
            exit_process(owner, "shutdown")
            assert await owner_down() == "shutdown"
            assert not is_alive(handle.pid)  # stopped before the owner finished exiting
            with pytest.raises(ExitError) as info:
                await handle.join()
            assert info.value.reason == "shutdown"
            tg.cancel_scope.cancel()

    async def test_an_owned_task_survives_outside_cancellation_until_its_owner_stops_it(
        self,
    ) -> None:
        # cancelling the task group stops the owner, which stops its task first
        order: list[str] = []

        async def work() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                order.append("task stopped")

        class Owner(Actor):
            async def init(self) -> None:
                await Task.spawn(work, self.children)

            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

            async def terminate(self, reason: Any, state: Any) -> None:
                order.append(f"owner terminate {reason}")

        async with anyio.create_task_group() as tg:
            await Owner.start(task_group=tg)
            tg.cancel_scope.cancel()
        assert order == ["task stopped", "owner terminate shutdown"]


class TestSpawnAndNotify:
    async def test_success_is_sent_to_the_parent_as_success_name_pid_value(self) -> None:
        send_stream, receive_stream = anyio.create_memory_object_stream[Any](10)
        async with anyio.create_task_group() as tg:
            parent = await Collector.start(send_stream, task_group=tg)
            handle = await Task.spawn_and_notify(lambda: 5, tg, parent)
            with anyio.fail_after(2):
                assert await receive_stream.receive() == ("$$success", handle.pid, 5)
            assert await handle.join() == 5
            tg.cancel_scope.cancel()
        send_stream.close()
        receive_stream.close()

    async def test_failure_is_sent_as_failure_name_pid_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL + 1, logger="anyotp")
        error = ValueError("nope")

        def bad() -> None:
            raise error

        send_stream, receive_stream = anyio.create_memory_object_stream[Any](10)
        async with anyio.create_task_group() as tg:
            parent = await Collector.start(send_stream, task_group=tg)
            handle = await Task.spawn_and_notify(bad, tg, parent, "ok", "err")
            with anyio.fail_after(2):
                assert await receive_stream.receive() == ("err", handle.pid, error)
            tg.cancel_scope.cancel()
        send_stream.close()
        receive_stream.close()

    async def test_a_task_stopped_before_finishing_notifies_failure_with_an_exiterror(
        self,
    ) -> None:
        send_stream, receive_stream = anyio.create_memory_object_stream[Any](10)
        async with anyio.create_task_group() as tg:
            parent = await Collector.start(send_stream, task_group=tg)
            handle = await Task.spawn_and_notify(anyio.sleep_forever, tg, parent)
            exit_process(handle.pid, "shutdown")
            with anyio.fail_after(2):
                tag, pid, err = await receive_stream.receive()
            assert (tag, pid) == ("$$failure", handle.pid)
            assert isinstance(err, ExitError)
            assert err.reason == "shutdown"
            assert err.pid == handle.pid
            tg.cancel_scope.cancel()
        send_stream.close()
        receive_stream.close()

    async def test_a_dead_parent_does_not_break_the_task(self) -> None:
        send_stream, receive_stream = anyio.create_memory_object_stream[Any](10)
        async with anyio.create_task_group() as tg:
            parent = await Collector.start(send_stream, task_group=tg)
            parent_down = watch_exit(parent).reason
            exit_process(parent, "kill")
            await parent_down()
            handle = await Task.spawn_and_notify(lambda: "ok", tg, parent)
            assert await handle.join() == "ok"
            tg.cancel_scope.cancel()
        send_stream.close()
        receive_stream.close()


class TestTaskRefusedAtStart:
    async def test_a_task_that_exits_before_its_init_still_dies_cleanly(self) -> None:
        from anyotp._exceptions import StartError

        class Refused(Task):
            async def _otp_boot(self, proc: Any, args: Any, kwargs: Any, ack: Any) -> Any:
                raise RuntimeError("refused before init")

        async with anyio.create_task_group() as tg:
            with anyio.fail_after(5), pytest.raises(StartError):
                await Refused.spawn(lambda: 1, tg)
        assert anyotp.processes() == []
