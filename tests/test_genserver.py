"""GenServer: dispatch of calls, casts and infos, state, replies, crashes, terminate."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import pytest

from anyotp import (
    PID,
    Actor,
    CallError,
    CallExit,
    CallNoProc,
    CallTimeout,
    From,
    GenServer,
    NoProcess,
    StartError,
    call,
    cast,
    cast_nowait,
    exit_process,
    is_alive,
    send,
    whereis,
)
from anyotp.testing import watch_exit

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- helpers


def anyotp_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "anyotp" and r.levelno == level]


class Counter(GenServer):
    """A server whose state is an int, with a log of what it handled."""

    async def init(self, start: int = 0, *, log: list[Any] | None = None) -> int:
        self.log = log if log is not None else []
        return start

    async def handle_call(self, request: Any, from_: From, state: int) -> Any:
        match request:
            case "get":
                return state, state
            case ("add", n):
                return state + n, state + n
            case "from":
                return from_.pid, state
            case "crash":
                raise RuntimeError("boom in handle_call")
            case "none":
                return None
            case "stop":
                self.stop("normal")
            case ("slow", delay):
                await anyio.sleep(delay)
                return "slow done", state
            case ("block", event):
                await event.wait()
                return "unblocked", state
            case ("busy", busy, event):
                busy.set()
                await event.wait()
                return "unblocked", state
        return ("unknown", request), state

    async def handle_cast(self, request: Any, state: int) -> Any:
        match request:
            case ("add", n):
                return state + n
            case ("append", item):
                self.log.append(item)
                return state
            case "crash":
                raise ValueError("boom in handle_cast")
        return state

    async def handle_info(self, message: Any, state: int) -> Any:
        match message:
            case ("info-add", n):
                return state + n
        return await super().handle_info(message, state)

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append(("terminate", reason, state))


# --------------------------------------------------------------------------- dispatch


class TestDispatch:
    async def test_call_is_answered_with_the_reply_from_handle_call(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(5, task_group=tg)
            assert await call(pid, "get") == 5
            assert await call(pid, ("add", 2)) == 7
            tg.cancel_scope.cancel()

    async def test_cast_is_handled_by_handle_cast_and_returns_at_once(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            assert await cast(pid, ("add", 3)) is None
            assert await call(pid, "get") == 3
            tg.cancel_scope.cancel()

    async def test_other_messages_go_to_handle_info(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            await send(pid, ("info-add", 4))
            assert await call(pid, "get") == 4
            tg.cancel_scope.cancel()

    async def test_state_is_threaded_through_calls_casts_and_infos(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(1, task_group=tg)
            await cast(pid, ("add", 10))
            await send(pid, ("info-add", 100))
            assert await call(pid, ("add", 1000)) == 1111
            await cast(pid, ("add", 1))
            assert await call(pid, "get") == 1112
            tg.cancel_scope.cancel()

    async def test_init_receives_the_args_and_kwargs_given_to_start(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(42, task_group=tg, log=log)
            await cast(pid, ("append", "x"))
            assert await call(pid, "get") == 42
            assert log == ["x"]
            tg.cancel_scope.cancel()

    async def test_a_cast_that_is_a_tuple_of_two_reaches_handle_cast_not_handle_info(
        self,
    ) -> None:
        # ("$gen_cast", ("add", 1)) is a 2-tuple; the payload shape must not confuse it.
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            await cast(pid, ("add", 1))
            await send(pid, ("add", 1000))  # an info, not a cast: Counter ignores it
            assert await call(pid, "get") == 1
            tg.cancel_scope.cancel()


class TestOrdering:
    async def test_casts_are_processed_in_the_order_sent(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            for i in range(200):
                await cast(pid, ("append", i))
            await call(pid, "get")
            assert log == list(range(200))
            tg.cancel_scope.cancel()

    async def test_a_thousand_concurrent_callers_each_get_their_own_reply(self) -> None:
        class Echo(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                await anyio.lowlevel.checkpoint()
                return ("echo", request), state

        results: dict[int, Any] = {}

        async def caller(pid: PID, i: int) -> None:
            results[i] = await call(pid, i, timeout=10)

        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            async with anyio.create_task_group() as callers:
                for i in range(1000):
                    callers.start_soon(caller, pid, i)
            assert results == {i: ("echo", i) for i in range(1000)}
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- defaults


class TestDefaultCallbacks:
    async def test_default_handle_info_logs_a_warning_and_keeps_the_state(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Plain(GenServer):
            async def init(self) -> str:
                return "state"

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return state, state

        caplog.set_level(logging.WARNING, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Plain.start(task_group=tg)
            await send(pid, ("surprise", 1))
            assert await call(pid, "get") == "state"
            warnings = anyotp_records(caplog, logging.WARNING)
            assert len(warnings) == 1
            assert "unexpected message" in warnings[0].getMessage()
            assert "('surprise', 1)" in warnings[0].getMessage()
            assert is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_default_handle_call_crashes_the_server_and_the_caller_gets_callexit(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class NoCalls(GenServer):
            pass

        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await NoCalls.start(task_group=tg)
            with pytest.raises(CallExit, match="NotImplementedError") as info:
                await call(pid, "hello")
            assert isinstance(info.value.reason, NotImplementedError)
            assert "does not implement handle_call" in str(info.value.reason)
            assert info.value.__cause__ is info.value.reason
            assert not is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_default_handle_cast_crashes_the_server_with_not_implemented_error(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class NoCasts(GenServer):
            pass

        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await NoCasts.start(task_group=tg)
            reason = watch_exit(pid).reason
            await cast(pid, "hello")
            got = await reason()
            assert isinstance(got, NotImplementedError)
            assert "does not implement handle_cast" in str(got)
            tg.cancel_scope.cancel()


class TestHandleCallResult:
    async def test_a_non_tuple_result_crashes_with_a_type_error_naming_the_method_and_fix(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            with pytest.raises(CallExit) as info:
                await call(pid, "none")
            reason = info.value.reason
            assert isinstance(reason, TypeError)
            assert "Counter.handle_call('none', ...) returned None" in str(reason)
            assert "(reply, new_state) tuple" in str(reason)
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- crashes


class TestCrash:
    async def test_a_handler_that_raises_crashes_the_server_with_that_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            reason = watch_exit(pid).reason
            await cast(pid, "crash")
            got = await reason()
            assert isinstance(got, ValueError)
            assert str(got) == "boom in handle_cast"
            tg.cancel_scope.cancel()

    async def test_a_crash_is_logged_once_with_its_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            with pytest.raises(CallExit):
                await call(pid, "crash")
            errors = anyotp_records(caplog, logging.ERROR)
            assert len(errors) == 1
            assert "crashed" in errors[0].getMessage()
            assert errors[0].exc_info is not None
            assert isinstance(errors[0].exc_info[1], RuntimeError)
            tg.cancel_scope.cancel()

    async def test_the_caller_of_the_crashing_call_gets_callexit_with_the_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            with pytest.raises(CallExit, match="boom in handle_call") as info:
                await call(pid, "crash")
            assert isinstance(info.value.reason, RuntimeError)
            assert info.value.server == pid
            assert info.value.request == "crash"
            tg.cancel_scope.cancel()

    async def test_a_crash_leaves_sibling_servers_and_the_task_group_untouched(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            a = await Counter.start(1, task_group=tg)
            b = await Counter.start(2, task_group=tg)
            with pytest.raises(CallExit):
                await call(a, "crash")
            assert not is_alive(a)
            assert is_alive(b)
            assert await call(b, "get") == 2
            c = await Counter.start(3, task_group=tg)  # the task group still works
            assert await call(c, "get") == 3
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- replies


class TestReply:
    async def test_from_reply_inside_handle_call_before_returning_wins_over_the_return(
        self,
    ) -> None:
        class Early(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                from_.reply("early")
                return "late", state

        async with anyio.create_task_group() as tg:
            pid = await Early.start(task_group=tg)
            assert await call(pid, "x") == "early"
            tg.cancel_scope.cancel()

    async def test_replying_twice_delivers_only_the_first_reply(self) -> None:
        class Twice(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                from_.reply(1)
                from_.reply(2)
                return 3, state

        async with anyio.create_task_group() as tg:
            pid = await Twice.start(task_group=tg)
            assert await call(pid, "x") == 1
            assert await call(pid, "y") == 1  # nothing stale left behind
            tg.cancel_scope.cancel()

    async def test_from_reply_from_a_spawned_task_is_honoured(self) -> None:
        class ViaTask(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                done = anyio.Event()

                def answer() -> None:
                    from_.reply(("from task", request))
                    done.set()

                await self.spawn_task(answer)
                await done.wait()
                return "from return", state

        async with anyio.create_task_group() as tg:
            pid = await ViaTask.start(task_group=tg)
            assert await call(pid, "q") == ("from task", "q")
            tg.cancel_scope.cancel()

    async def test_from_reply_from_another_thread_is_honoured(self) -> None:
        class ViaThread(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                await anyio.to_thread.run_sync(from_.reply, "from thread")
                return "from return", state

        async with anyio.create_task_group() as tg:
            pid = await ViaThread.start(task_group=tg)
            assert await call(pid, "q") == "from thread"
            tg.cancel_scope.cancel()

    async def test_from_pid_is_the_calling_process_or_none_outside_processes(self) -> None:
        results: list[Any] = []

        class Caller(Actor):
            async def init(self, server: PID) -> None:
                results.append((await call(server, "from"), self.pid))

            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            server = await Counter.start(task_group=tg)
            assert await call(server, "from") is None
            await Caller.start(server, task_group=tg)
            [(seen, caller_pid)] = results
            assert seen == caller_pid
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- start


class TestStart:
    async def test_start_returns_once_init_has_returned(self) -> None:
        order: list[str] = []

        class Slow(GenServer):
            async def init(self) -> None:
                await anyio.sleep(0.01)
                order.append("init done")

        async with anyio.create_task_group() as tg:
            await Slow.start(task_group=tg)
            order.append("start returned")
            assert order == ["init done", "start returned"]
            tg.cancel_scope.cancel()

    async def test_start_raises_starterror_chained_to_the_init_exception(self) -> None:
        error = ValueError("bad config")

        class Failing(GenServer):
            async def init(self) -> None:
                raise error

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match="Failing failed to start") as info:
                await Failing.start(task_group=tg)
            assert info.value.__cause__ is error
            assert info.value.reason is error
            tg.cancel_scope.cancel()

    async def test_a_failed_start_has_released_the_name_when_it_raises(self) -> None:
        class Failing(GenServer):
            async def init(self) -> None:
                raise ValueError("no")

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError):
                await Failing.start(task_group=tg, name="svc")
            assert whereis("svc") is None
            pid = await Counter.start(task_group=tg, name="svc")
            assert whereis("svc") == pid
            tg.cancel_scope.cancel()

    async def test_a_failed_init_does_not_crash_the_task_group_or_log_a_crash(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")

        class Failing(GenServer):
            async def init(self) -> None:
                raise ValueError("no")

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError):
                await Failing.start(task_group=tg)
            assert await call(await Counter.start(task_group=tg), "get") == 0
            assert anyotp_records(caplog, logging.ERROR) == []
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- terminate


class TestTerminate:
    async def test_terminate_gets_normal_and_the_last_state_when_the_server_stops(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            await cast(pid, ("add", 7))
            with pytest.raises(CallExit) as info:
                await call(pid, "stop")
            assert info.value.reason == "normal"
            assert log == [("terminate", "normal", 7)]
            tg.cancel_scope.cancel()

    async def test_terminate_gets_the_exception_and_the_last_state_on_a_crash(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            await cast(pid, ("add", 3))
            with pytest.raises(CallExit):
                await call(pid, "crash")
            [(what, reason, state)] = log
            assert what == "terminate"
            assert isinstance(reason, RuntimeError)
            assert state == 3
            tg.cancel_scope.cancel()

    async def test_terminate_gets_shutdown_when_the_task_group_is_cancelled(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            await cast(pid, ("add", 9))
            assert await call(pid, "get") == 9
            tg.cancel_scope.cancel()
        assert log == [("terminate", "shutdown", 9)]
        assert not is_alive(pid)

    async def test_terminate_gets_the_reason_of_an_exit_signal(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            reason = watch_exit(pid).reason
            exit_process(pid, "shutdown")
            assert await reason() == "shutdown"
            assert log == [("terminate", "shutdown", 0)]
            tg.cancel_scope.cancel()

    async def test_terminate_is_not_called_when_init_fails(self) -> None:
        # Elixir: a failed init exits "without entering the loop or calling terminate/2"
        log: list[Any] = []

        class Failing(GenServer):
            async def init(self) -> None:
                raise ValueError("no")

            async def terminate(self, reason: Any, state: Any) -> None:
                log.append(("terminate", reason, state))

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError):
                await Failing.start(task_group=tg)
            assert log == []
            tg.cancel_scope.cancel()

    async def test_terminate_is_not_called_when_the_server_is_killed(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, log=log)
            reason = watch_exit(pid).reason
            exit_process(pid, "kill")
            assert await reason() == "killed"
            assert log == []
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- call


class TestCall:
    async def test_call_with_timeout_none_waits_for_a_slow_reply(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            assert await call(pid, ("slow", 0.05), timeout=None) == "slow done"
            tg.cancel_scope.cancel()

    async def test_call_works_from_a_plain_task_that_is_not_a_process(self) -> None:
        got: list[Any] = []

        async def client(pid: PID) -> None:
            got.append(await call(pid, ("add", 1)))

        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            async with anyio.create_task_group() as clients:
                clients.start_soon(client, pid)
                clients.start_soon(client, pid)
            assert sorted(got) == [1, 2]
            tg.cancel_scope.cancel()

    async def test_call_by_registered_name_reaches_the_server(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(5, task_group=tg, name="counter")
            assert whereis("counter") == pid
            assert await call("counter", "get") == 5
            await cast("counter", ("add", 1))
            assert await call("counter", "get") == 6
            tg.cancel_scope.cancel()
        assert whereis("counter") is None

    async def test_start_with_a_taken_name_raises_starterror_naming_the_holder(self) -> None:
        async with anyio.create_task_group() as tg:
            holder = await Counter.start(task_group=tg, name="taken")
            with pytest.raises(StartError, match=rf"'taken'.*{holder!r}") as info:
                await Counter.start(task_group=tg, name="taken")
            assert info.value.reason == ("already_started", holder)
            assert whereis("taken") == holder
            assert await call("taken", "get") == 0
            tg.cancel_scope.cancel()

    async def test_the_name_is_released_when_the_server_exits(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, name="short-lived")
            reason = watch_exit(pid).reason
            exit_process(pid, "kill")
            await reason()
            assert whereis("short-lived") is None
            again = await Counter.start(task_group=tg, name="short-lived")
            assert whereis("short-lived") == again
            tg.cancel_scope.cancel()

    async def test_a_blocked_caller_learns_promptly_that_the_server_was_killed(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            busy, never = anyio.Event(), anyio.Event()

            async def kill_when_busy() -> None:
                await busy.wait()  # the server is inside handle_call, blocked on `never`
                exit_process(pid, "kill")

            started = time.monotonic()
            tg.start_soon(kill_when_busy)
            with pytest.raises(CallExit) as info:
                await call(pid, ("busy", busy, never), timeout=30)
            assert time.monotonic() - started < 5
            assert info.value.reason == "killed"
            assert info.value.timeout == 30
            tg.cancel_scope.cancel()


class TestCast:
    async def test_cast_to_a_dead_server_is_dropped_silently_as_in_otp(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            reason = watch_exit(pid).reason
            exit_process(pid, "kill")
            await reason()
            await cast(pid, ("add", 1))
            cast_nowait(pid, ("add", 1))
            assert not is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_cast_to_an_unknown_name_raises_noprocess_naming_it(self) -> None:
        with pytest.raises(NoProcess, match="'nobody'"):
            await cast("nobody", "x")


class TestCallFailures:
    """Every way ``call`` can fail, each with its exception and its ``reason``."""

    async def test_call_to_a_dead_process_raises_callnoproc(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            reason = watch_exit(pid).reason
            exit_process(pid, "kill")
            await reason()
            with pytest.raises(CallNoProc, match="not alive") as info:
                await call(pid, "get")
            assert isinstance(info.value, LookupError)
            assert isinstance(info.value, NoProcess)
            assert info.value.reason == "noproc"
            assert info.value.server == pid
            tg.cancel_scope.cancel()

    async def test_call_to_an_unregistered_name_raises_callnoproc_naming_it(self) -> None:
        with pytest.raises(CallNoProc, match="'nobody'") as info:
            await call("nobody", "get")
        assert info.value.reason == "noproc"

    async def test_call_without_a_reply_in_time_raises_calltimeout(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            release = anyio.Event()
            with pytest.raises(CallTimeout, match=r"timed out: no reply in 0.05 s") as info:
                await call(pid, ("block", release), timeout=0.05)
            assert isinstance(info.value, TimeoutError)
            assert info.value.timeout == 0.05
            assert info.value.reason == "timeout"
            release.set()
            # the late reply ("unblocked") is discarded; the next call gets its own
            assert await call(pid, "get") == 0
            tg.cancel_scope.cancel()

    async def test_call_while_the_server_crashes_raises_callexit_with_the_reason(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            with pytest.raises(CallExit, match="exited with reason") as info:
                await call(pid, "crash")
            assert isinstance(info.value.reason, RuntimeError)
            tg.cancel_scope.cancel()

    async def test_a_process_calling_itself_raises_callerror_calling_self(self) -> None:
        class SelfCaller(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                if request == "go":
                    try:
                        await call(self.pid, "inner")
                    except CallError as e:
                        return (type(e), e.reason, str(e)), state
                return "inner", state

        async with anyio.create_task_group() as tg:
            pid = await SelfCaller.start(task_group=tg)
            kind, reason, message = await call(pid, "go")
            assert kind is CallError
            assert reason == "calling_self"
            assert "deadlock" in message
            tg.cancel_scope.cancel()

    async def test_a_call_queued_behind_the_fatal_message_gets_callexit(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="anyotp")
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            busy, release = anyio.Event(), anyio.Event()
            errors: list[BaseException] = []

            async def caller(request: Any, *, task_status: Any) -> None:
                task_status.started()  # nothing awaits between here and the enqueue
                try:
                    await call(pid, request)
                except CallExit as e:
                    errors.append(e)

            async with anyio.create_task_group() as callers:
                await callers.start(caller, ("busy", busy, release))
                await busy.wait()
                await callers.start(caller, "crash")
                await callers.start(caller, "get")
                release.set()
            # the first call was answered; the crash and the queued call both failed
            assert len(errors) == 2
            assert all(isinstance(e.reason, RuntimeError) for e in errors)
            tg.cancel_scope.cancel()

    async def test_calltimeout_is_a_callerror_and_callexit_is_not_a_timeout(self) -> None:
        assert issubclass(CallTimeout, CallError)
        assert issubclass(CallNoProc, CallError)
        assert issubclass(CallExit, CallError)
        assert not issubclass(CallExit, TimeoutError)


# --------------------------------------------------------------------------- tasks


class TestSpawnTask:
    async def test_handle_task_end_gets_success_and_the_value(self) -> None:
        class Spawner(GenServer):
            async def init(self) -> list[Any]:
                return []

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                if request == "spawn":
                    return await self.spawn_task(lambda: 41 + 1), state
                return state, state

            async def handle_task_end(
                self, child_pid: PID, status: str, result: Any, state: Any
            ) -> Any:
                return [*state, (child_pid, status, result)]

        async with anyio.create_task_group() as tg:
            pid = await Spawner.start(task_group=tg)
            task_pid = await call(pid, "spawn")
            with anyio.fail_after(2):
                while not await call(pid, "get"):
                    await anyio.sleep(0.005)
            assert await call(pid, "get") == [(task_pid, "success", 42)]
            tg.cancel_scope.cancel()

    async def test_spawn_task_passes_args_and_kwargs_to_the_function(self) -> None:
        class Spawner(GenServer):
            async def init(self) -> Any:
                return None

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                if request == "spawn":

                    async def work(a: int, *, b: int) -> int:
                        return a * b

                    await self.spawn_task(work, 6, b=7)
                return state, state

            async def handle_task_end(
                self, child_pid: PID, status: str, result: Any, state: Any
            ) -> Any:
                return (status, result)

        async with anyio.create_task_group() as tg:
            pid = await Spawner.start(task_group=tg)
            await call(pid, "spawn")
            with anyio.fail_after(2):
                while await call(pid, "get") is None:
                    await anyio.sleep(0.005)
            assert await call(pid, "get") == ("success", 42)
            tg.cancel_scope.cancel()

    async def test_spawned_tasks_are_stopped_when_the_server_exits(self) -> None:
        class Spawner(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return await self.spawn_task(anyio.sleep_forever), state

        async with anyio.create_task_group() as tg:
            pid = await Spawner.start(task_group=tg)
            task_pid = await call(pid, "spawn")
            assert is_alive(task_pid)
            reason = watch_exit(pid).reason
            exit_process(pid, "shutdown")
            assert await reason() == "shutdown"
            assert not is_alive(task_pid)
            tg.cancel_scope.cancel()
