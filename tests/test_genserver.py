"""GenServer: dispatch of calls, casts and infos, state, replies (deferred too), crashes,
start, terminate, tasks, and the directives Reply, NoReply, Continue, Stop and idle timeouts."""

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
    Continue,
    From,
    GenServer,
    NoProcess,
    NoReply,
    Reply,
    StartError,
    Stop,
    call,
    cast,
    cast_nowait,
    exit_process,
    get_state,
    is_alive,
    reply,
    send,
    whereis,
)
from anyotp.testing import wait_until, watch_exit

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- helpers


def anyotp_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("anyotp") and r.levelno == level]


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

    async def test_casts_from_a_plain_thread_wake_an_idle_server_every_time(self) -> None:
        # Each cast finds the server idle (the thread waits for its effect): the wake
        # crosses threads every time, and none is lost.
        seen: list[int] = []

        class Recorder(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                seen.append(request)
                return state

        async with anyio.create_task_group() as tg:
            pid = await Recorder.start(task_group=tg)

            def sender() -> None:
                for i in range(300):
                    cast_nowait(pid, i)
                    deadline = time.monotonic() + 5
                    while len(seen) <= i:  # until the server took it, idle again
                        assert time.monotonic() < deadline, f"cast {i} never handled"
                        time.sleep(0.0001)

            await anyio.to_thread.run_sync(sender)
            assert seen == list(range(300))
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

    async def test_init_returning_stop_makes_start_fail_without_terminate(self) -> None:
        terminated: list[Any] = []

        class Refuses(GenServer):
            async def init(self) -> Any:
                return Stop("not_today")

            async def terminate(self, reason: Any, state: Any) -> None:
                terminated.append(reason)

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await Refuses.start(task_group=tg)
        assert info.value.reason == "not_today"
        assert terminated == []

    async def test_start_link_outside_a_process_raises_and_leaves_nothing_behind(self) -> None:
        from anyotp import NotInProcess, processes

        async with anyio.create_task_group() as tg:
            with pytest.raises(NotInProcess, match="start_link"):
                await Deferred.start_link(task_group=tg)
        assert processes() == []


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

    async def test_a_cast_may_return_a_directive_after_plain_states(self) -> None:
        # The loop remembers the type of the last plain state (no isinstance per
        # cast); a directive after a run of plain states is still carried out.
        class Shifting(GenServer):
            async def init(self, fired: anyio.Event) -> Any:
                self.fired = fired
                return 0

            async def handle_cast(self, request: Any, state: Any) -> Any:
                if request == "arm":
                    return NoReply(state + 100, 0.01)  # an idle timeout
                if request == "stop":
                    return Stop("custom", state)
                return state + 1

            async def handle_info(self, message: Any, state: Any) -> Any:
                if message == "timeout":
                    self.fired.set()
                return state

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return state, state

        fired = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Shifting.start(fired, task_group=tg)
            reason = watch_exit(pid).reason
            for request in ["incr", "incr", "arm"]:
                cast_nowait(pid, request)
            with anyio.fail_after(5):
                await fired.wait()
            assert await call(pid, "get") == 102
            cast_nowait(pid, "incr")
            cast_nowait(pid, "stop")
            with anyio.fail_after(5):
                assert await reason() == "custom"
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
            await wait_until(lambda: call(pid, "get"), timeout=2, what="handle_task_end")
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
            await wait_until(lambda: call(pid, "get"), timeout=2, what="handle_task_end")
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

    async def test_a_killed_task_still_reaches_handle_task_end_as_a_failure(self) -> None:
        class Parent(GenServer):
            async def init(self, ended: anyio.Event) -> Any:
                self.ended = ended
                return None

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                pid = await self.spawn_task(anyio.sleep_forever)
                return pid, state

            async def handle_task_end(
                self, child_pid: PID, status: str, result: Any, state: Any
            ) -> Any:
                self.ended.set()
                return (status, type(result).__name__, getattr(result, "reason", None))

        ended = anyio.Event()
        async with anyio.create_task_group() as tg:
            parent = await Parent.start(ended, task_group=tg)
            task = await call(parent, "spawn")
            exit_process(task, "kill")
            with anyio.fail_after(2):
                await ended.wait()
            assert await get_state(parent) == ("failure", "ExitError", "killed")
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- deferred replies


class Deferred(GenServer):
    """Parks callers and answers them when told to."""

    async def init(self) -> Any:
        return []

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "wait":
            return NoReply([*state, from_])
        if request == "count":
            return len(state), state
        raise ValueError(request)

    async def handle_cast(self, request: Any, state: Any) -> Any:
        for from_ in state:
            reply(from_, request)
        return []


class TestDeferredReply:
    async def test_noreply_parks_the_caller_until_reply_is_called(self) -> None:
        results: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Deferred.start(task_group=tg)

            async def waiter() -> None:
                results.append(await call(pid, "wait"))

            tg.start_soon(waiter)
            tg.start_soon(waiter)

            async def both_parked() -> bool:
                return await call(pid, "count") >= 2

            await wait_until(both_parked, timeout=2, what="both callers parked")
            assert results == []
            await cast(pid, "go")
            await wait_until(lambda: len(results) >= 2, timeout=2, what="both replies")
            assert results == ["go", "go"]
            tg.cancel_scope.cancel()

    async def test_a_deferred_reply_after_the_caller_timed_out_is_discarded(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Deferred.start(task_group=tg)
            with pytest.raises(CallTimeout):
                await call(pid, "wait", timeout=0.05)
            await cast(pid, "late")  # replies to the caller that gave up: dropped
            assert await call(pid, "count") == 0
            tg.cancel_scope.cancel()

    async def test_reply_twice_only_the_first_reply_counts(self) -> None:
        class Twice(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                reply(from_, "first")
                return "second", state

        async with anyio.create_task_group() as tg:
            pid = await Twice.start(task_group=tg)
            assert await call(pid, "x") == "first"
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- continue


class Continuing(GenServer):
    async def init(self, log: list[Any]) -> Any:
        self.log = log
        return NoReply(["init"], Continue("boot"))

    async def handle_continue(self, continue_arg: Any, state: Any) -> Any:
        self.log.append(("continue", continue_arg))
        if continue_arg == "chain":
            return NoReply([*state, "chain"], Continue("end"))
        return [*state, continue_arg]

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "get":
            return state, state
        return Reply("ok", state, Continue(request))


class TestContinue:
    async def test_continue_from_init_runs_before_the_first_message(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Continuing.start(log, task_group=tg)
            assert await call(pid, "get") == ["init", "boot"]
            tg.cancel_scope.cancel()

    async def test_reply_with_continue_replies_then_continues_before_the_next_message(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Continuing.start(log, task_group=tg)
            assert await call(pid, "chain") == "ok"
            assert await call(pid, "get") == ["init", "boot", "chain", "end"]
            assert log == [("continue", "boot"), ("continue", "chain"), ("continue", "end")]
            tg.cancel_scope.cancel()

    async def test_continue_without_handle_continue_crashes_the_server(self) -> None:
        class NoHandler(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return Reply("ok", state, Continue("x"))

        async with anyio.create_task_group() as tg:
            pid = await NoHandler.start(task_group=tg)
            assert await call(pid, "go") == "ok"
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the server's exit")
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- idle timeouts


class Idle(GenServer):
    async def init(self, idle: float, fired: anyio.Event) -> Any:
        self.fired = fired
        return NoReply(0, idle)

    async def handle_info(self, message: Any, state: Any) -> Any:
        if message == "timeout":
            self.fired.set()
            return state + 1
        return state

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return state, state


class TestIdleTimeout:
    async def test_idle_timeout_delivers_timeout_to_handle_info(self) -> None:
        fired = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Idle.start(0.01, fired, task_group=tg)
            with anyio.fail_after(2):
                await fired.wait()
            assert await call(pid, "n") == 1
            tg.cancel_scope.cancel()

    async def test_a_message_before_the_idle_timeout_cancels_it(self) -> None:
        fired = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Idle.start(30.0, fired, task_group=tg)
            assert await call(pid, "n") == 0  # the call arrived first: no timeout
            assert not fired.is_set()
            tg.cancel_scope.cancel()

    async def test_a_negative_timeout_action_crashes_with_a_clear_type_error(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Bad(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                return NoReply(state, -1)

        async with anyio.create_task_group() as tg:
            pid = await Bad.start(task_group=tg)
            await cast(pid, "x")
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the server's exit")
            tg.cancel_scope.cancel()
        assert "is not a Continue(arg) or an idle timeout" in caplog.text

    async def test_get_state_does_not_cancel_a_pending_idle_timeout(self) -> None:
        fired = anyio.Event()

        class IdleOnce(GenServer):
            async def init(self) -> Any:
                return NoReply("waiting", 0.05)

            async def handle_info(self, message: Any, state: Any) -> Any:
                fired.set()
                return message

        async with anyio.create_task_group() as tg:
            pid = await IdleOnce.start(task_group=tg)
            assert await get_state(pid) == "waiting"
            with anyio.fail_after(2):
                await fired.wait()
            assert await get_state(pid) == "timeout"
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- stop


class Stopper(GenServer):
    async def init(self, seen: list[Any]) -> Any:
        self.seen = seen
        return "initial"

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "stop_with_reply":
            return Stop("normal", "final", reply="bye")
        return Stop("custom")

    async def handle_cast(self, request: Any, state: Any) -> Any:
        return Stop(("shutdown", request))

    async def terminate(self, reason: Any, state: Any) -> None:
        self.seen.append((reason, state))


class TestStop:
    async def test_stop_with_reply_answers_the_caller_then_terminates(self) -> None:
        seen: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Stopper.start(seen, task_group=tg)
            assert await call(pid, "stop_with_reply") == "bye"
            await wait_until(lambda: seen, timeout=2, what="terminate")
            assert seen == [("normal", "final")]
            assert not is_alive(pid)

    async def test_stop_without_reply_makes_the_call_fail_with_the_reason(self) -> None:
        seen: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Stopper.start(seen, task_group=tg)
            with pytest.raises(CallExit) as info:
                await call(pid, "other")
            assert info.value.reason == "custom"
        assert seen == [("custom", "initial")]

    async def test_stop_from_handle_cast_exits_with_the_reason(self) -> None:
        seen: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Stopper.start(seen, task_group=tg)
            await cast(pid, "bye")
        assert seen == [(("shutdown", "bye"), "initial")]

    async def test_a_handle_call_returning_a_list_crashes_naming_the_fix(self) -> None:
        class Wrong(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return [1, state]

        async with anyio.create_task_group() as tg:
            pid = await Wrong.start(task_group=tg)
            with pytest.raises(CallExit) as info:
                await call(pid, "x")
            assert isinstance(info.value.reason, TypeError)
            assert "(reply, new_state)" in str(info.value.reason)


class TestCallbacksSetOnTheInstance:
    async def test_a_handle_call_set_on_the_instance_is_the_one_called(self) -> None:
        # e.g. mock.patch.object(server, "handle_call") in a test
        from anyotp._core import table

        class Server(GenServer):
            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return "class", state

        async def patched(request: Any, from_: Any, state: Any) -> Any:
            return ("instance", request), state

        class Patched(Server):
            async def init(self) -> int:
                self.handle_call = patched  # type: ignore[method-assign]
                return 0

        async with anyio.create_task_group() as tg:
            plain = await Server.start(task_group=tg)
            pid = await Patched.start(task_group=tg)
            assert await call(plain, "x") == "class"
            assert await call(pid, "x") == ("instance", "x")
            assert table[pid.id].body.handle_call is patched
            tg.cancel_scope.cancel()
