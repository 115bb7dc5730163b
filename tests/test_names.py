"""Locally registered names: register, unregister, whereis, registered, and names as
targets of send, cast and call (Erlang's ``register/2`` family)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from anyotp import (
    ANY,
    IGNORE,
    PID,
    Actor,
    CallNoProc,
    GenServer,
    NoProcess,
    StartError,
    call,
    cast,
    cast_nowait,
    monitor,
    register,
    registered,
    send,
    send_nowait,
    unregister,
    whereis,
)

pytestmark = pytest.mark.anyio


class Worker(Actor):
    """``("stop", reason)`` stops it, ``("crash", exc)`` crashes it, anything else is
    forwarded to ``report_to``."""

    async def init(self, report_to: PID | None = None, name: str | None = None) -> None:
        self.report_to = report_to
        if name is not None:
            assert register(name, self.pid)

    async def run(self, state: Any) -> Any:
        return await self.receive(
            (("stop", ANY), self.stop),
            (("crash", BaseException), self._crash),
            (ANY, self._forward),
        )

    def _crash(self, exc: BaseException) -> None:
        raise exc

    def _forward(self, message: Any) -> None:
        if self.report_to is not None:
            send_nowait(self.report_to, message)


class Counter(GenServer):
    async def init(self) -> int:
        return 0

    async def handle_call(self, request: Any, from_: Any, state: int) -> Any:
        return state, state

    async def handle_cast(self, request: Any, state: int) -> int:
        return state + request


class Watcher(Actor):
    """Monitors the PIDs it is sent; on their DOWN, records the reason and sets their event."""

    async def init(self, exits: dict[PID, tuple[anyio.Event, list[Any]]]) -> None:
        self.exits = exits

    async def run(self, state: Any) -> Any:
        return await self.receive(
            (("watch", PID), monitor),
            (("DOWN", IGNORE, "process", PID, ANY), self._down),
        )

    def _down(self, pid: PID, reason: Any) -> None:
        event, reasons = self.exits[pid]
        reasons.append(reason)
        event.set()


class Processes:
    """Starts workers in one task group and waits for their exits (on DOWN, no sleep)."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self.tg = tg
        self.exits: dict[PID, tuple[anyio.Event, list[Any]]] = {}
        self.watcher: PID

    async def start(self, **kwargs: Any) -> PID:
        pid = await Worker.start(task_group=self.tg, **kwargs)
        self.watch(pid)
        return pid

    def watch(self, pid: PID) -> None:
        self.exits[pid] = (anyio.Event(), [])
        send_nowait(self.watcher, ("watch", pid))

    async def wait_down(self, pid: PID) -> Any:
        event, reasons = self.exits[pid]
        with anyio.fail_after(2):
            await event.wait()
        return reasons[0]


@pytest.fixture
async def procs() -> AsyncIterator[Processes]:
    """Start workers with ``await procs.start()``; all are stopped after the test."""
    async with anyio.create_task_group() as tg:
        p = Processes(tg)
        p.watcher = await Watcher.start(p.exits, task_group=tg)
        yield p
        tg.cancel_scope.cancel()


class TestRegister:
    async def test_register_returns_True_and_whereis_finds_the_process(
        self, procs: Processes
    ) -> None:
        pid = await procs.start()
        assert register("worker", pid) is True
        assert whereis("worker") == pid
        assert "worker" in registered()
        assert unregister("worker") is True

    async def test_register_returns_False_when_the_name_is_taken(self, procs: Processes) -> None:
        first = await procs.start()
        second = await procs.start()
        assert register("worker", first) is True
        assert register("worker", second) is False
        assert whereis("worker") == first
        unregister("worker")

    async def test_register_returns_False_when_the_process_already_has_a_name(
        self, procs: Processes
    ) -> None:
        pid = await procs.start()
        assert register("first", pid) is True
        assert register("second", pid) is False
        assert whereis("second") is None
        assert registered() == ["first"]
        unregister("first")

    async def test_registering_a_taken_name_again_fails_even_for_its_holder(
        self, procs: Processes
    ) -> None:
        # Erlang's register/2 refuses a taken name, and a second name for a process
        pid = await procs.start()
        assert register("worker", pid) is True
        assert register("worker", pid) is False
        assert register("another", pid) is False
        assert registered() == ["worker"]
        unregister("worker")

    async def test_register_of_a_dead_process_raises_NoProcess(self, procs: Processes) -> None:
        pid = await procs.start()
        send_nowait(pid, ("stop", "normal"))
        await procs.wait_down(pid)
        with pytest.raises(NoProcess, match=r"register\('late', <PID 0\.\d+>\).*not alive"):
            register("late", pid)
        assert whereis("late") is None

    @pytest.mark.parametrize("name", [42, None, b"bytes", ("tuple",), ""])
    async def test_register_with_a_name_that_is_not_a_non_empty_str_raises_TypeError(
        self, procs: Processes, name: Any
    ) -> None:
        pid = await procs.start()
        with pytest.raises(TypeError, match=r"register\(\) takes a non-empty str name, got "):
            register(name, pid)
        assert registered() == []

    def test_register_with_something_that_is_not_a_pid_raises_TypeError(self) -> None:
        with pytest.raises(TypeError, match=r"register\('name', \.\.\.\) takes a PID, got str"):
            register("name", "not a pid")  # type: ignore[arg-type]

    async def test_register_from_racing_threads_gives_the_name_to_exactly_one(
        self, procs: Processes
    ) -> None:
        pids = [await procs.start() for _ in range(8)]
        barrier = threading.Barrier(len(pids))
        results: dict[PID, bool] = {}

        def contend(pid: PID) -> None:
            barrier.wait(5)
            results[pid] = register("contested", pid)

        threads = [threading.Thread(target=contend, args=(p,)) for p in pids]
        for t in threads:
            t.start()
        for t in threads:
            await anyio.to_thread.run_sync(t.join)
        winners = [pid for pid, won in results.items() if won]
        assert len(results) == 8
        assert len(winners) == 1
        assert whereis("contested") == winners[0]
        unregister("contested")


class TestUnregister:
    async def test_unregister_returns_True_and_frees_the_name(self, procs: Processes) -> None:
        first = await procs.start()
        second = await procs.start()
        register("worker", first)
        assert unregister("worker") is True
        assert whereis("worker") is None
        assert register("worker", second) is True  # the name is free
        assert register("another", first) is True  # and the process may take a new one
        unregister("worker")
        unregister("another")

    def test_unregister_of_an_unknown_name_returns_False(self) -> None:
        assert unregister("nobody") is False


class TestWhereisAndRegistered:
    def test_whereis_of_an_unknown_name_is_None(self) -> None:
        assert whereis("nobody") is None

    async def test_registered_lists_every_name_sorted(self, procs: Processes) -> None:
        for name in ("zeta", "alpha", "Mid", "beta"):
            register(name, await procs.start())
        assert registered() == ["Mid", "alpha", "beta", "zeta"]
        for name in registered():
            unregister(name)
        assert registered() == []


class TestReleaseOnExit:
    @pytest.mark.parametrize(
        "stop",
        [
            pytest.param(("stop", "normal"), id="normal"),
            pytest.param(("stop", "custom"), id="custom-reason"),
            pytest.param(("crash", RuntimeError("crash")), id="crash"),
        ],
    )
    async def test_a_name_is_released_when_its_process_exits(
        self, procs: Processes, stop: tuple[str, Any]
    ) -> None:
        pid = await procs.start(name="worker")
        assert whereis("worker") == pid
        send_nowait(pid, stop)
        await procs.wait_down(pid)
        assert whereis("worker") is None
        assert registered() == []
        successor = await procs.start(name="worker")  # the name can be taken again
        assert whereis("worker") == successor
        unregister("worker")

    async def test_a_name_is_released_when_the_task_group_is_cancelled(self) -> None:
        async with anyio.create_task_group() as tg:
            await Worker.start(name="worker", task_group=tg)
            assert registered() == ["worker"]
            tg.cancel_scope.cancel()
        assert registered() == []

    async def test_a_name_given_to_start_is_registered_and_released(self, procs: Processes) -> None:
        pid = await Worker.start(task_group=procs.tg, name="started")
        procs.watch(pid)
        assert whereis("started") == pid
        send_nowait("started", ("stop", "normal"))
        await procs.wait_down(pid)
        assert whereis("started") is None

    async def test_start_with_a_name_already_taken_raises_StartError(
        self, procs: Processes
    ) -> None:
        holder = await procs.start(name="taken")
        before = len(registered())
        with pytest.raises(StartError, match=r"as 'taken': the name is already registered") as e:
            await Worker.start(task_group=procs.tg, name="taken")
        assert e.value.reason == ("already_started", holder)
        assert len(registered()) == before
        unregister("taken")


class TestNamesAsTargets:
    async def test_send_by_name_delivers_to_the_registered_process(self) -> None:
        got: list[Any] = []
        done = anyio.Event()

        class Receiver(Actor):
            async def run(self, state: Any) -> Any:
                got.append(await self.receive((ANY, lambda m: m)))
                done.set()
                self.stop()

        async with anyio.create_task_group() as tg:
            await Receiver.start(task_group=tg, name="receiver")
            await send("receiver", "hello")
            with anyio.fail_after(2):
                await done.wait()
        assert got == ["hello"]

    async def test_cast_and_call_by_name_reach_the_registered_server(self) -> None:
        async with anyio.create_task_group() as tg:
            await Counter.start(task_group=tg, name="counter")
            await cast("counter", 5)
            await cast("counter", 2)
            assert await call("counter", "get") == 7
            tg.cancel_scope.cancel()

    async def test_send_cast_and_call_to_a_released_name_fail_naming_it(
        self, procs: Processes
    ) -> None:
        pid = await procs.start(name="gone")
        send_nowait(pid, ("stop", "normal"))
        await procs.wait_down(pid)
        with pytest.raises(NoProcess, match=r"send\(\) to 'gone'.*no process is registered"):
            send_nowait("gone", "hello")
        with pytest.raises(NoProcess, match=r"cast\(\) to 'gone'.*no process is registered"):
            cast_nowait("gone", "hello")
        with pytest.raises(CallNoProc, match=r"'gone'.*no process is registered") as e:
            await call("gone", "get")
        assert (e.value.server, e.value.reason) == ("gone", "noproc")
