"""GenServer directives: Reply, NoReply (deferred replies), Stop, Continue, idle timeouts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    CallExit,
    CallTimeout,
    Continue,
    From,
    GenServer,
    NoReply,
    Reply,
    Stop,
    call,
    cast,
    is_alive,
    reply,
)

pytestmark = pytest.mark.anyio


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
            with anyio.fail_after(2):
                while await call(pid, "count") < 2:
                    await anyio.sleep(0.005)
            assert results == []
            await cast(pid, "go")
            with anyio.fail_after(2):
                while len(results) < 2:
                    await anyio.sleep(0.005)
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
            with anyio.fail_after(2):
                while is_alive(pid):
                    await anyio.sleep(0.005)
            tg.cancel_scope.cancel()


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
            with anyio.fail_after(2):
                while is_alive(pid):
                    await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
        assert "is not a Continue(arg) or an idle timeout" in caplog.text


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
            with anyio.fail_after(2):
                while not seen:
                    await anyio.sleep(0.005)
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


class TestStartLinkOutsideAProcess:
    async def test_start_link_outside_a_process_raises_and_leaves_nothing_behind(self) -> None:
        from anyotp import NotInProcess, processes

        async with anyio.create_task_group() as tg:
            with pytest.raises(NotInProcess, match="start_link"):
                await Deferred.start_link(task_group=tg)
        assert processes() == []
