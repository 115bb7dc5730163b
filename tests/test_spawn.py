"""Plain processes: spawn, spawn_link, spawn_monitor, receive, process_flag."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from anyotp import (
    ANY,
    PID,
    Actor,
    NotInProcess,
    ReceiveTimeout,
    exit_process,
    is_alive,
    process_flag,
    receive,
    self_pid,
    send,
    spawn,
    spawn_link,
    spawn_monitor,
)

pytestmark = pytest.mark.anyio


async def echo() -> None:
    while True:
        msg = await receive(("ping", PID), "stop")
        match msg:
            case ("ping", sender):
                await send(sender, ("pong", self_pid()))
            case "stop":
                return


async def crash() -> None:
    raise ValueError("boom")


class Host(Actor):
    """Runs a test body inside a process, puts its result in ``box``, then waits."""

    async def init(self, body: Any, box: dict[str, Any], done: anyio.Event) -> Any:
        self._body = body
        self._box = box
        self._done = done
        return None

    async def run(self, state: Any) -> Any:
        try:
            self._box["result"] = await self._body()
        finally:
            self._done.set()
        await receive("never")
        return state


async def in_process(body: Any) -> Any:
    """Run ``body()`` inside a process and return its result."""
    done = anyio.Event()
    box: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        pid = await Host.start(body, box, done, task_group=tg)
        await done.wait()
        exit_process(pid, "kill")  # "kill": the body may have turned trap_exit on
    return box["result"]


class TestSpawn:
    async def test_spawn_runs_the_function_in_a_process_that_receives(self) -> None:
        async def body() -> Any:
            pid = await spawn(echo)
            await send(pid, ("ping", self_pid()))
            got = await receive(("pong", ANY), timeout=5.0)
            await send(pid, "stop")
            return got, pid

        got, pid = await in_process(body)
        assert got == ("pong", pid)

    async def test_spawn_outside_a_process_needs_a_task_group(self) -> None:
        with pytest.raises(TypeError, match=r"spawn\(\) outside a process needs task_group="):
            await spawn(echo)

    async def test_spawn_with_a_task_group_runs_until_the_function_returns(self) -> None:
        ran = anyio.Event()

        async def once(x: int) -> None:
            assert x == 7
            ran.set()

        async with anyio.create_task_group() as tg:
            pid = await spawn(once, 7, task_group=tg)
            await ran.wait()
        assert not is_alive(pid)

    async def test_spawn_rejects_what_is_not_callable(self) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(TypeError, match=r"spawn\(\) runs a function, got int 3"):
                await spawn(3, task_group=tg)  # type: ignore[arg-type]

    async def test_a_spawned_process_is_stopped_when_its_owner_exits(self) -> None:
        async def body() -> Any:
            return await spawn(echo)

        pid = await in_process(body)
        assert not is_alive(pid)


class TestSpawnMonitor:
    async def test_spawn_monitor_delivers_down_with_normal_when_the_function_returns(
        self,
    ) -> None:
        async def quick() -> None:
            return None

        async def body() -> Any:
            pid, ref = await spawn_monitor(quick)
            return pid, ref, await receive(("DOWN", ANY, "process", ANY, ANY), timeout=5.0)

        pid, ref, down = await in_process(body)
        assert down == ("DOWN", ref, "process", pid, "normal")

    async def test_spawn_monitor_delivers_the_exception_of_a_crash(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL, logger="anyotp")

        async def body() -> Any:
            _, ref = await spawn_monitor(crash)
            return await receive(("DOWN", ref, "process", ANY, ANY), timeout=5.0)

        down = await in_process(body)
        assert isinstance(down[4], ValueError)

    async def test_spawn_monitor_outside_a_process_raises_notinprocess(self) -> None:
        with pytest.raises(NotInProcess, match=r"spawn_monitor\(\)"):
            await spawn_monitor(echo)


class TestSpawnLink:
    async def test_a_crash_of_a_linked_process_arrives_as_exit_when_trapping(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.CRITICAL, logger="anyotp")

        async def body() -> Any:
            assert process_flag("trap_exit", True) is False
            pid = await spawn_link(crash)
            return pid, await receive(("EXIT", ANY, ANY), timeout=5.0)

        pid, msg = await in_process(body)
        assert msg[1] == pid
        assert isinstance(msg[2], ValueError)

    async def test_spawn_link_outside_a_process_raises_notinprocess(self) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(NotInProcess, match=r"spawn_link\(\) links"):
                await spawn_link(echo, task_group=tg)


class TestReceive:
    async def test_receive_outside_a_process_raises_notinprocess(self) -> None:
        with pytest.raises(NotInProcess, match=r"receive\(\)"):
            await receive("x")

    async def test_receive_keeps_non_matching_messages_in_order(self) -> None:
        async def body() -> Any:
            me = self_pid()
            for m in ("a", "b", ("c", 1)):
                await send(me, m)
            first = await receive(("c", int))
            return [first, await receive(), await receive()]

        assert await in_process(body) == [("c", 1), "a", "b"]

    async def test_receive_times_out_with_receivetimeout(self) -> None:
        async def body() -> Any:
            with pytest.raises(ReceiveTimeout):
                await receive("nothing", timeout=0)
            return True

        assert await in_process(body)

    async def test_receive_works_in_an_actors_own_task(self) -> None:
        async def body() -> Any:
            await send(self_pid(), ("hello", 1))
            return await receive(("hello", ANY))

        assert await in_process(body) == ("hello", 1)


class TestProcessFlag:
    async def test_process_flag_returns_the_old_value_and_sets_trapping(self) -> None:
        async def body() -> Any:
            old = process_flag("trap_exit", True)
            newer = process_flag("trap_exit", False)
            return old, newer

        assert await in_process(body) == (False, True)

    async def test_trapping_turned_on_at_run_time_turns_an_exit_signal_into_a_message(
        self,
    ) -> None:
        async def body() -> Any:
            process_flag("trap_exit", True)
            exit_process(self_pid(), "bye")
            return await receive(("EXIT", ANY, ANY), timeout=5.0)

        got = await in_process(body)
        assert got[2] == "bye"

    async def test_process_flag_with_an_unknown_flag_raises_valueerror(self) -> None:
        async def body() -> Any:
            with pytest.raises(ValueError, match=r"unknown flag; supported flags: 'trap_exit'"):
                process_flag("priority", "high")
            return True

        assert await in_process(body)

    async def test_process_flag_outside_a_process_raises_notinprocess(self) -> None:
        with pytest.raises(NotInProcess):
            process_flag("trap_exit", True)
