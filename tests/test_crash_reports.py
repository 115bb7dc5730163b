"""Crash reports: logged once, structured, per concern, and not for handled failures."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from anyotp import (
    PID,
    CallExit,
    ChildSpec,
    GenServer,
    Supervisor,
    Task,
    call,
    cast_nowait,
    register,
    whereis,
)
from anyotp.testing import wait_until, watch_exit

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Crasher(GenServer):
    async def init(self, name: str | None = None) -> None:
        if name is not None:
            register(name, self.pid)

    async def handle_cast(self, request: Any, state: Any) -> Any:
        raise Boom(f"crash on {request!r}")

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "crash":
            raise Boom("crash in a call")
        return request, state


class Quiet(Crasher):
    log_crashes = False


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


class TestCrashReport:
    async def test_a_crash_report_carries_pid_name_behaviour_reason_initial_call_and_last_message(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Crasher.start("crasher", task_group=tg)
            died = watch_exit(pid)
            cast_nowait(pid, "poison")
            reason = await died.reason()
            tg.cancel_scope.cancel()
        [record] = errors(caplog)
        assert record.name == "anyotp.process"
        assert record.exc_info is not None
        assert record.exc_info[1] is reason
        report = record.crash_report  # type: ignore[attr-defined]
        assert report == {
            "pid": pid,
            "name": "crasher",
            "behaviour": "Crasher",
            "reason": reason,
            "initial_call": f"{Crasher.__module__}.Crasher.init",
            "last_message": ("$gen_cast", "poison"),
        }

    async def test_a_class_that_opts_out_is_not_logged_but_still_reports_its_exit(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Quiet.start(task_group=tg)
            died = watch_exit(pid)
            cast_nowait(pid, "poison")
            assert isinstance(await died.reason(), Boom)
            tg.cancel_scope.cancel()
        assert errors(caplog) == []

    async def test_a_child_spec_can_opt_out_and_the_child_is_still_restarted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                spec = ChildSpec(id="c", actor_class=Crasher, args=("c",), log_crashes=False)
                return [spec]

        caplog.set_level(logging.INFO, logger="anyotp")
        async with anyio.create_task_group() as tg:
            await App.start(task_group=tg)
            first = whereis("c")
            assert first is not None
            cast_nowait(first, "poison")
            await wait_until(lambda: whereis("c") not in (None, first), what="a restarted child")
            tg.cancel_scope.cancel()
        assert errors(caplog) == []
        restarts = [r for r in caplog.records if r.name == "anyotp.supervisor"]
        assert restarts, "the supervisor logs the restart under its own logger"


class TestHandledFailures:
    async def test_a_spawn_task_failure_handled_by_handle_task_end_is_not_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen = anyio.Event()
        got: list[Any] = []

        class Owner(GenServer):
            async def init(self) -> None:
                await self.spawn_task(self.work)

            def work(self) -> None:
                raise Boom("expected")

            async def handle_task_end(
                self, child_pid: PID, status: str, result: Any, state: Any
            ) -> Any:
                got.append((status, type(result)))
                seen.set()
                return state

        async with anyio.create_task_group() as tg:
            await Owner.start(task_group=tg)
            with anyio.fail_after(5):
                await seen.wait()
            tg.cancel_scope.cancel()
        assert got == [("failure", Boom)]
        assert errors(caplog) == []

    async def test_a_failure_awaited_with_task_await_is_not_logged_a_spawned_one_is(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def work() -> None:
            raise Boom("delivered")

        class Owner(GenServer):
            trap_exit = True  # Task.async_ links: the task's crash comes as an EXIT

            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                task = await Task.async_(work)
                try:
                    await Task.await_(task)
                except Boom as e:
                    return repr(e), state
                return None, state

            async def handle_info(self, message: Any, state: Any) -> Any:
                return state

        async with anyio.create_task_group() as tg:
            owner = await Owner.start(task_group=tg)
            assert await call(owner, "go") == "Boom('delivered')"
            assert errors(caplog) == []
            handle = await Task.spawn(work, tg)  # nobody to deliver to: logged, once
            with pytest.raises(Boom):
                await handle.join()
            tg.cancel_scope.cancel()
        assert len(errors(caplog)) == 1

    async def test_a_caller_that_dies_of_a_failed_call_gets_one_warning_without_a_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Caller(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                await call(request, "crash")  # the server crashes: CallExit, unhandled
                return state

        async with anyio.create_task_group() as tg:
            server = await Crasher.start(task_group=tg)
            caller = await Caller.start(task_group=tg)
            died = watch_exit(caller)
            cast_nowait(caller, server)
            assert isinstance(await died.reason(), CallExit)
            tg.cancel_scope.cancel()
        [server_crash] = errors(caplog)
        assert isinstance(server_crash.crash_report["reason"], Boom)  # type: ignore[attr-defined]
        warnings = [
            r for r in caplog.records if r.levelno == logging.WARNING and r.name == "anyotp.process"
        ]
        assert len(warnings) == 1
        assert "its call to" in warnings[0].getMessage()
        assert warnings[0].exc_info is None
