"""StateMachine (gen_statem, handle_event_function mode)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    CallExit,
    KeepState,
    NextState,
    RepeatState,
    StateMachine,
    Stop,
    call,
    cast,
    get_state,
    is_alive,
    send,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Door(StateMachine):
    state_enter = True

    async def init(self, code: str, log: list[Any]) -> Any:
        self.log = log
        return "locked", {"code": code, "typed": ""}

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match (event_type, content, state):
            case ("enter", old, "open"):
                self.log.append(("enter", old, "open"))
                return KeepState(actions=[("state_timeout", 0.02, "lock")])
            case ("enter", old, new):
                self.log.append(("enter", old, new))
                return KeepState()
            case (("call", from_), ("button", digit), "locked"):
                typed = data["typed"] + digit
                if typed == data["code"]:
                    return NextState("open", {**data, "typed": ""}, [("reply", from_, "open")])
                return KeepState({**data, "typed": typed}, [("reply", from_, "locked")])
            case (("call", from_), ("button", _), "open"):
                return KeepState(actions=[("reply", from_, "already open")])
            case ("state_timeout", "lock", "open"):
                self.log.append("auto-lock")
                return NextState("locked", data)
            case (("call", from_), "state", _):
                return KeepState(actions=[("reply", from_, state)])
        return KeepState()


class TestDoorLock:
    async def test_code_opens_the_door_and_the_state_timeout_locks_it_again(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            door = await Door.start("12", log, task_group=tg)
            assert await call(door, ("button", "1")) == "locked"
            assert await call(door, ("button", "2")) == "open"
            assert await call(door, ("button", "3")) == "already open"

            async def locked() -> bool:
                return await call(door, "state") == "locked"

            await wait_until(locked, timeout=2, what="the door locking again")
            assert log == [
                ("enter", "locked", "locked"),
                ("enter", "locked", "open"),
                "auto-lock",
                ("enter", "open", "locked"),
            ]
            assert (await get_state(door))[0] == "locked"
            tg.cancel_scope.cancel()


class Recorder(StateMachine):
    """Records every event it handles as (event_type, content, state)."""

    async def init(self, script: Any, seen: list[Any]) -> Any:
        self.script, self.seen = script, seen
        return "a", 0

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        kind = "call" if isinstance(event_type, tuple) and event_type[0] == "call" else event_type
        self.seen.append((kind, content, state))
        return await self.script(self, event_type, content, state, data)


async def run_recorder(script: Any, drive: Any) -> list[Any]:
    seen: list[Any] = []
    async with anyio.create_task_group() as tg:
        pid = await Recorder.start(script, seen, task_group=tg)
        await drive(pid)
        tg.cancel_scope.cancel()
    return seen


class TestActions:
    async def test_postponed_events_are_retried_after_the_state_changes_in_order(self) -> None:
        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if state == "a" and content in ("x", "y"):
                return KeepState(actions=["postpone"])
            if content == "go":
                return NextState("b", data)
            if isinstance(et, tuple):
                return KeepState(actions=[("reply", et[1], "ok")])
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "x")
            await cast(pid, "y")
            await cast(pid, "go")
            await call(pid, "sync")

        seen = await run_recorder(script, drive)
        assert seen == [
            ("cast", "x", "a"),
            ("cast", "y", "a"),
            ("cast", "go", "a"),
            ("cast", "x", "b"),
            ("cast", "y", "b"),
            ("call", "sync", "b"),
        ]

    async def test_next_event_is_handled_before_any_queued_message(self) -> None:
        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "first":
                return KeepState(
                    actions=[("next_event", "internal", "i1"), ("next_event", "internal", "i2")]
                )
            if isinstance(et, tuple):
                return KeepState(actions=[("reply", et[1], "ok")])
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "first")
            await cast(pid, "second")
            await call(pid, "sync")

        seen = await run_recorder(script, drive)
        assert [c for _, c, _ in seen] == ["first", "i1", "i2", "second", "sync"]
        assert seen[1][0] == "internal"

    async def test_event_timeout_fires_when_idle_and_is_cancelled_by_any_event(self) -> None:
        fired = anyio.Event()

        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "arm":
                return KeepState(actions=[("timeout", 0.01, "idle")])
            if content == "arm-long":
                return KeepState(actions=[("timeout", 30, "never")])
            if et == "timeout":
                fired.set()
            if isinstance(et, tuple):
                return KeepState(actions=[("reply", et[1], "ok")])
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "arm-long")
            await call(pid, "cancels it")
            await cast(pid, "arm")
            with anyio.fail_after(2):
                await fired.wait()

        seen = await run_recorder(script, drive)
        assert ("timeout", "idle", "a") in seen
        assert all(c != "never" for _, c, _ in seen)

    async def test_generic_timeouts_survive_other_events_and_can_be_cancelled(self) -> None:
        fired = anyio.Event()

        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "arm":
                return KeepState(
                    actions=[
                        (("timeout", "keep"), 0.02, "kept"),
                        (("timeout", "drop"), 0.01, "dropped"),
                    ]
                )
            if content == "cancel":
                return NextState("b", data, [(("timeout", "drop"), None, None)])
            if et == ("timeout", "keep"):
                fired.set()
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "arm")
            await cast(pid, "cancel")
            await send(pid, "noise")
            with anyio.fail_after(2):
                await fired.wait()

        seen = await run_recorder(script, drive)
        assert (("timeout", "keep"), "kept", "b") in [(e, c, s) for e, c, s in seen] or (
            "timeout",
            "kept",
            "b",
        ) in seen
        assert all(c != "dropped" for _, c, _ in seen)

    async def test_state_timeout_is_cancelled_by_a_state_change(self) -> None:
        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "arm":
                return KeepState(actions=[("state_timeout", 0.01, "st")])
            if content == "leave":
                return NextState("b", data, [("timeout", 0.03, "later")])
            if isinstance(et, tuple):
                return KeepState(actions=[("reply", et[1], state)])
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "arm")
            await cast(pid, "leave")

            async def done() -> bool:
                return (await get_state(pid))[1] == "done"

            await wait_until(done, timeout=2, what="the state 'done'")

        async def script_done(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if et == "timeout":
                return KeepState("done")
            return await script(me, et, content, state, data)

        seen = await run_recorder(script_done, drive)
        assert all(et != "state_timeout" for et, _, _ in seen)

    async def test_repeat_state_reruns_the_enter_call(self) -> None:
        enters: list[Any] = []

        class Rep(StateMachine):
            state_enter = True

            async def init(self) -> Any:
                return "s", 0

            async def handle_event(self, et: Any, content: Any, state: Any, data: Any) -> Any:
                if et == "enter":
                    enters.append((content, state))
                    return KeepState()
                return RepeatState(data + 1, [("reply", et[1], data + 1)])

        async with anyio.create_task_group() as tg:
            pid = await Rep.start(task_group=tg)
            assert await call(pid, "again") == 1
            assert enters == [("s", "s"), ("s", "s")]
            tg.cancel_scope.cancel()


class TestStopAndErrors:
    async def test_stop_with_reply_answers_then_exits_with_the_reason(self) -> None:
        class S(StateMachine):
            async def init(self) -> Any:
                return "on", None

            async def handle_event(self, et: Any, content: Any, state: Any, data: Any) -> Any:
                return Stop("normal", reply="bye")

        async with anyio.create_task_group() as tg:
            pid = await S.start(task_group=tg)
            assert await call(pid, "stop") == "bye"
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")

    async def test_a_bad_return_crashes_with_a_message_naming_the_fix(self) -> None:
        class Bad(StateMachine):
            async def init(self) -> Any:
                return "on", None

            async def handle_event(self, et: Any, content: Any, state: Any, data: Any) -> Any:
                return "nonsense"

        async with anyio.create_task_group() as tg:
            pid = await Bad.start(task_group=tg)
            with pytest.raises(CallExit) as info:
                await call(pid, "x")
            assert "return (state, data[, actions])" in str(info.value.reason)

    async def test_an_enter_call_that_changes_state_crashes_the_machine(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Bad(StateMachine):
            state_enter = True

            async def init(self) -> Any:
                return "on", None

            async def handle_event(self, et: Any, content: Any, state: Any, data: Any) -> Any:
                return NextState("off", data)

        # As in gen_statem, the first enter call runs after start() has returned.
        async with anyio.create_task_group() as tg:
            pid = await Bad.start(task_group=tg)
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")
        assert "must not change the state" in caplog.text

    async def test_init_must_return_state_and_data(self) -> None:
        class Bad(StateMachine):
            async def init(self) -> Any:
                return "only-state"

        from anyotp import StartError

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await Bad.start(task_group=tg)
            assert "(state, data)" in str(info.value.__cause__)


class TestTransitionOrder:
    async def test_a_state_timeout_set_with_a_state_change_starts_in_the_new_state(
        self,
    ) -> None:
        fired = anyio.Event()

        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "go":
                return NextState("b", data, [("state_timeout", 0.01, "in-b")])
            if et == "state_timeout":
                fired.set()
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "go")
            with anyio.fail_after(2):
                await fired.wait()

        seen = await run_recorder(script, drive)
        assert ("state_timeout", "in-b", "b") in seen

    async def test_next_events_run_before_retried_postponed_events(self) -> None:
        async def script(me: Any, et: Any, content: Any, state: Any, data: Any) -> Any:
            if state == "a" and content == "early":
                return KeepState(actions=["postpone"])
            if content == "go":
                return NextState("b", data, [("next_event", "internal", "inserted")])
            if isinstance(et, tuple):
                return KeepState(actions=[("reply", et[1], "ok")])
            return KeepState()

        async def drive(pid: Any) -> None:
            await cast(pid, "early")
            await cast(pid, "go")
            await call(pid, "sync")

        seen = await run_recorder(script, drive)
        assert [c for _, c, _ in seen] == ["early", "go", "inserted", "early", "sync"]

    async def test_next_event_in_a_state_enter_call_is_refused(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Bad(StateMachine):
            state_enter = True

            async def init(self) -> Any:
                return "on", None

            async def handle_event(self, et: Any, content: Any, state: Any, data: Any) -> Any:
                return KeepState(actions=[("next_event", "internal", "x")])

        async with anyio.create_task_group() as tg:
            pid = await Bad.start(task_group=tg)
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")
        assert "'next_event' is not allowed in a state enter call" in caplog.text


class TestSystemRequestsAsync:
    async def test_replace_state_takes_an_async_function(self) -> None:
        from anyotp import get_state, replace_state

        class Light(StateMachine):
            async def init(self) -> Any:
                return "off", 0

            async def handle_event(
                self, event_type: Any, content: Any, state: Any, data: Any
            ) -> Any:
                return KeepState()

        async def swap(pair: tuple[str, int]) -> tuple[str, int]:
            await anyio.lowlevel.checkpoint()
            return "on", pair[1] + 1

        async with anyio.create_task_group() as tg:
            pid = await Light.start(task_group=tg)
            assert await replace_state(pid, swap) == ("on", 1)
            assert await get_state(pid) == ("on", 1)
            tg.cancel_scope.cancel()
