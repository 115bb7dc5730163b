"""anyotp.sync.loop_thread: an event loop in a background thread for thread-first code.

Every test runs on both backends (the loop thread's ``backend=``); the test itself is
a plain thread, as the programs this is for.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import anyotp
import anyotp.sync
from anyotp import (
    CallExit,
    ChildSpec,
    From,
    GenServer,
    NoReply,
    StartError,
    Stop,
    Supervisor,
    is_alive,
    processes,
    whereis,
)
from anyotp.sync import LoopThread, loop_thread


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _quiet_crash_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL + 1, logger="anyotp")


class Counter(GenServer):
    """Counts calls; logs its terminate (with the thread it ran on) to ``log``."""

    async def init(self, label: str, log: list[Any], start: int = 0) -> int:
        self.label, self.log = label, log
        return start

    async def handle_call(self, request: Any, from_: From, n: int) -> Any:
        match request:
            case "incr":
                return n + 1, n + 1
            case "thread":
                return threading.current_thread().name, n
            case "crash":
                raise RuntimeError("crash on purpose")
        return n, n

    async def terminate(self, reason: Any, n: int) -> None:
        self.log.append(("terminate", self.label, reason))


class FailingInit(GenServer):
    async def init(self) -> None:
        raise ValueError("no database")


class Pair(Supervisor):
    def child_specs(self, log: list[Any]) -> list[ChildSpec]:
        return [
            ChildSpec(id="x", actor_class=Counter, args=("x", log)),
            ChildSpec(id="y", actor_class=Counter, args=("y", log)),
        ]


class TestStart:
    def test_start_returns_a_pid_that_sync_call_reaches_on_the_loop_thread(
        self, backend: str
    ) -> None:
        log: list[Any] = []
        with loop_thread(backend=backend) as lt:
            pid = lt.start(Counter, "a", log, start=10)
            assert anyotp.sync.call(pid, "incr", timeout=5.0) == 11
            assert anyotp.sync.call(pid, "thread", timeout=5.0) != threading.current_thread().name
            assert lt.backend == backend

    def test_start_with_a_name_registers_the_process(self, backend: str) -> None:
        with loop_thread(backend=backend) as lt:
            pid = lt.start(Counter, "a", [], name="counter")
            assert whereis("counter") == pid
            assert anyotp.sync.call("counter", "incr", timeout=5.0) == 1

    def test_start_with_a_taken_name_raises_start_error(self, backend: str) -> None:
        with loop_thread(backend=backend) as lt:
            first = lt.start(Counter, "a", [], name="counter")
            with pytest.raises(StartError, match="already registered"):
                lt.start(Counter, "b", [], name="counter")
            assert is_alive(first)

    def test_an_init_that_raises_makes_start_raise_start_error_with_the_cause(
        self, backend: str
    ) -> None:
        with loop_thread(backend=backend) as lt:
            with pytest.raises(StartError, match="FailingInit failed to start") as info:
                lt.start(FailingInit)
            assert isinstance(info.value.__cause__, ValueError)
            assert lt.run(anyio.sleep, 0) is None  # the loop thread lives on

    def test_start_of_something_that_is_not_a_process_class_raises_type_error(
        self, backend: str
    ) -> None:
        with (
            loop_thread(backend=backend) as lt,
            pytest.raises(TypeError, match=r"LoopThread.start\(\) takes a process class"),
        ):
            lt.start(Counter())  # type: ignore[arg-type]

    def test_a_supervisor_tree_can_be_hosted(self, backend: str) -> None:
        log: list[Any] = []
        with loop_thread(backend=backend) as lt:
            sup = lt.start(Pair, log)
            children = lt.run(Supervisor.which_children, sup)
            assert [c.id for c in children] == ["x", "y"]
        assert log == [("terminate", "y", "shutdown"), ("terminate", "x", "shutdown")]

    def test_a_crashed_process_is_not_restarted_and_the_others_live_on(self, backend: str) -> None:
        with loop_thread(backend=backend) as lt:
            a = lt.start(Counter, "a", [])
            b = lt.start(Counter, "b", [])
            with pytest.raises(anyotp.sync.GenServerError, match="crash on purpose"):
                anyotp.sync.call(a, "crash", timeout=5.0)
            assert not is_alive(a)
            assert anyotp.sync.call(b, "incr", timeout=5.0) == 1


class TestRun:
    def test_run_returns_what_the_coroutine_function_returns(self, backend: str) -> None:
        async def add(x: int, y: int) -> int:
            await anyio.lowlevel.checkpoint()
            return x + y

        with loop_thread(backend=backend) as lt:
            assert lt.run(add, 1, 2) == 3

    def test_run_can_await_calls_to_hosted_processes(self, backend: str) -> None:
        with loop_thread(backend=backend) as lt:
            pid = lt.start(Counter, "a", [])
            assert lt.run(anyotp.call, pid, "incr") == 1

    def test_run_raises_what_the_coroutine_raised(self, backend: str) -> None:
        async def fail() -> None:
            raise KeyError("missing")

        with loop_thread(backend=backend) as lt, pytest.raises(KeyError, match="missing"):
            lt.run(fail)

    def test_start_from_inside_run_raises_runtime_error_naming_the_fix(self, backend: str) -> None:
        async def nested(lt: LoopThread) -> None:
            lt.start(Counter, "a", [])

        with (
            loop_thread(backend=backend) as lt,
            pytest.raises(
                RuntimeError, match=r"blocks the calling thread, and this thread runs an event loop"
            ),
        ):
            lt.run(nested, lt)


class TestExit:
    def test_exit_stops_every_hosted_process_in_reverse_start_order(self, backend: str) -> None:
        log: list[Any] = []
        with loop_thread(backend=backend) as lt:
            pids = [lt.start(Counter, label, log) for label in ("a", "b", "c")]
        assert log == [("terminate", label, "shutdown") for label in ("c", "b", "a")]
        assert not any(is_alive(p) for p in pids)
        assert processes() == []

    def test_an_exception_in_the_with_block_still_stops_everything_and_propagates(
        self, backend: str
    ) -> None:
        log: list[Any] = []

        def body() -> None:
            with loop_thread(backend=backend) as lt:
                lt.start(Counter, "a", log)
                raise ZeroDivisionError("in the with block")

        with pytest.raises(ZeroDivisionError, match="in the with block"):
            body()
        assert log == [("terminate", "a", "shutdown")]
        assert processes() == []

    def test_start_and_run_after_the_block_ended_raise_runtime_error(self, backend: str) -> None:
        with loop_thread(backend=backend) as lt:
            pass
        with pytest.raises(RuntimeError, match=r"LoopThread.start\(\): the loop thread is stopped"):
            lt.start(Counter, "a", [])
        with pytest.raises(RuntimeError, match=r"LoopThread.run\(\): the loop thread is stopped"):
            lt.run(anyio.sleep, 0)
        assert repr(lt) == f"<LoopThread {backend} stopped>"


class TestMisuse:
    @pytest.mark.anyio
    async def test_loop_thread_on_an_event_loop_thread_raises_runtime_error(self) -> None:
        with pytest.raises(RuntimeError, match="start processes in a task group instead"):  # noqa: SIM117
            with loop_thread():
                pass


class Stuck(GenServer):
    """Never answers a call (it sets ``called``); a cast makes it exit with "gone"."""

    async def init(self, called: threading.Event) -> threading.Event:
        return called

    async def handle_call(self, request: Any, from_: From, called: threading.Event) -> Any:
        called.set()
        return NoReply(called)

    async def handle_cast(self, request: Any, called: threading.Event) -> Any:
        return Stop("gone")


class TestAcrossLoops:
    @pytest.mark.parametrize(
        ("server_backend", "caller_backend"), [("trio", "asyncio"), ("asyncio", "trio")]
    )
    def test_async_call_reaches_a_server_on_another_loop_and_backend(
        self, server_backend: str, caller_backend: str
    ) -> None:
        with (
            loop_thread(backend=server_backend) as server_loop,
            loop_thread(backend=caller_backend) as caller_loop,
        ):
            pid = server_loop.start(Counter, "a", [])
            assert caller_loop.run(anyotp.call, pid, "incr") == 1
            thread_name = caller_loop.run(anyotp.call, pid, "thread")
            assert thread_name == server_loop.run(_thread_name)

    @pytest.mark.parametrize(
        ("server_backend", "caller_backend"), [("trio", "asyncio"), ("asyncio", "trio")]
    )
    def test_a_call_fails_at_once_when_the_server_on_another_loop_exits(
        self, server_backend: str, caller_backend: str
    ) -> None:
        called = threading.Event()

        async def call_then_kill(pid: anyotp.PID) -> Any:
            async def kill_soon() -> None:
                await anyio.to_thread.run_sync(called.wait)  # the call is in the handler
                await anyotp.cast(pid, "die")

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_soon)
                with anyio.fail_after(5):
                    try:
                        await anyotp.call(pid, "wait", timeout=None)
                    except CallExit as e:
                        return e.reason
            return None

        with (
            loop_thread(backend=server_backend) as server_loop,
            loop_thread(backend=caller_backend) as caller_loop,
        ):
            pid = server_loop.start(Stuck, called)
            assert caller_loop.run(call_then_kill, pid) == "gone"


async def _thread_name() -> str:
    return threading.current_thread().name
