"""Timers: send_after, send_interval, cancel_timer."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import anyio
import pytest

from anyotp import (
    ANY,
    Actor,
    NotInProcess,
    cancel_timer,
    processes,
    read_timer,
    send_after,
    send_interval,
)
from anyotp._core import route
from anyotp._timer import _thread_timers

pytestmark = pytest.mark.anyio


class Collector(Actor):
    """Runs `setup(self)` in init, then records every message it receives."""

    async def init(self, setup: Any, got: list[Any], done: anyio.Event, want: int) -> Any:
        self.got, self.done, self.want = got, done, want
        self.refs = setup(self)
        return None

    async def run(self, state: Any) -> Any:
        msg = await self.receive((ANY, lambda m: m))
        self.got.append(msg)
        if len(self.got) >= self.want:
            self.done.set()
        return state


async def collect(setup: Any, want: int) -> tuple[list[Any], Any]:
    got: list[Any] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        pid = await Collector.start(setup, got, done, want, task_group=tg)
        with anyio.fail_after(3):
            await done.wait()
        refs = route(pid).body.refs  # type: ignore[union-attr]
        tg.cancel_scope.cancel()
    return got, refs


class TestSendAfter:
    async def test_messages_arrive_in_deadline_order(self) -> None:
        def setup(me: Actor) -> Any:
            return [send_after(me.pid, "late", 0.04), send_after(me.pid, "soon", 0.0)]

        got, _ = await collect(setup, 2)
        assert got == ["soon", "late"]

    async def test_a_cancelled_timer_never_delivers_and_reports_time_left(self) -> None:
        def setup(me: Actor) -> Any:
            ref = send_after(me.pid, "cancelled", 0.02)
            left = cancel_timer(ref)
            send_after(me.pid, "after", 0.05)
            return left, ref

        got, (left, ref) = await collect(setup, 1)
        assert got == ["after"]
        assert left is not None
        assert 0 < left <= 0.02
        assert cancel_timer(ref) is None  # already cancelled

    async def test_cancel_after_firing_returns_none_and_the_message_stays(self) -> None:
        def setup(me: Actor) -> Any:
            return send_after(me.pid, "fired", 0)

        got, ref = await collect(setup, 1)
        assert got == ["fired"]
        assert cancel_timer(ref) is None

    async def test_timer_outside_a_process_raises_not_in_process(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Collector.start(lambda me: None, [], anyio.Event(), 1, task_group=tg)
            with pytest.raises(NotInProcess, match="send_after"):
                send_after(pid, "x", 1)
            tg.cancel_scope.cancel()

    async def test_negative_delay_raises_value_error(self) -> None:
        def setup(me: Actor) -> Any:
            with pytest.raises(ValueError, match=">= 0"):
                send_after(me.pid, "x", -1)
            return send_after(me.pid, "ok", 0)

        got, _ = await collect(setup, 1)
        assert got == ["ok"]

    @pytest.mark.parametrize("never", [math.inf, 10**400], ids=["inf", "huge-int"])
    async def test_a_delay_of_forever_never_fires_and_spoils_no_other_timer(
        self, never: float
    ) -> None:
        def setup(me: Actor) -> Any:
            forever = send_after(me.pid, "never", never)
            send_after(me.pid, "soon", 0.01)
            return read_timer(forever)

        got, left = await collect(setup, 1)
        assert got == ["soon"]
        assert left == math.inf

    async def test_a_destination_of_the_wrong_type_is_refused_at_the_call(self) -> None:
        def setup(me: Actor) -> Any:
            with pytest.raises(TypeError, match=r"send_after\(\): expected a PID.*got int"):
                send_after(12345, "x", 0)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"send_interval\(\): expected a PID"):
                send_interval(12345, "x", 1)  # type: ignore[arg-type]
            send_after("nobody-yet", "x", 0)  # a name: looked up when it fires
            return send_after(me.pid, "ok", 0)

        got, _ = await collect(setup, 1)
        assert got == ["ok"]


class TestThreadTimers:
    def test_an_interval_shorter_than_a_delivery_leaves_the_timer_thread_to_others(
        self,
    ) -> None:
        # The thread cannot keep up with a 1 µs interval: between the ticks it is
        # behind on it lets go of its lock, so new timers and cancels still get in.
        from anyotp.sync import GenServer as SyncGenServer

        class Busy(SyncGenServer[int]):
            def init(self) -> int:
                self.ring = threading.Event()
                return 0

            def handle_call(self, message: dict[str, Any], state: int) -> Any:
                if message.get("tick"):
                    self.ref = send_interval(self.pid, "tick", message["tick"])
                elif message.get("after"):
                    send_after(self.pid, "ring", message["after"])
                elif message.get("cancel"):
                    return cancel_timer(self.ref) is not None, state
                return state, state

            def handle_info(self, message: Any, state: int) -> int:
                if message == "ring":
                    self.ring.set()
                return state + 1

        with Busy() as busy:
            busy.call({"tick": 1e-6}, timeout=5.0)
            deadline = time.monotonic() + 5.0
            while busy.call({}, timeout=5.0) < 3000:  # ticks flow: the thread is behind
                assert time.monotonic() < deadline, "no ticks"
            lock = _thread_timers.cond  # what send_after and cancel_timer take
            assert lock.acquire(timeout=2.0), "the timer thread holds its lock"
            lock.release()
            busy.call({"after": 0.01}, timeout=5.0)
            assert busy.ring.wait(5.0)
            assert busy.call({"cancel": True}, timeout=5.0) is True

    @pytest.mark.parametrize("never", [math.inf, 1e10, 10**400], ids=["inf", "1e10", "huge-int"])
    def test_a_timer_of_forever_leaves_the_timer_thread_firing_the_others(
        self, never: float
    ) -> None:
        # The timers of thread processes share one thread: a deadline past what the
        # platform's clock holds must not end it (every later timer would be lost).
        from anyotp.sync import GenServer as SyncGenServer

        class Alarms(SyncGenServer[list[Any]]):
            def init(self) -> list[Any]:
                self.ring = threading.Event()
                return []

            def handle_call(self, message: dict[str, Any], state: list[Any]) -> Any:
                if "after" in message:
                    msg, seconds = message["after"]
                    send_after(self.pid, msg, seconds)
                return list(state), state

            def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
                state.append(message)
                self.ring.set()
                return state

        with Alarms() as alarms:
            alarms.call({"after": ("never", never)}, timeout=5.0)
            alarms.call({"after": ("ring", 0.01)}, timeout=5.0)
            assert alarms.ring.wait(5.0)
            assert alarms.call({}, timeout=5.0) == ["ring"]
            assert any(t.name == "anyotp timers" and t.is_alive() for t in threading.enumerate())


class TestSendInterval:
    async def test_interval_repeats_until_cancelled(self) -> None:
        def setup(me: Actor) -> Any:
            return send_interval(me.pid, "tick", 0.005)

        got, ref = await collect(setup, 3)
        assert got[:3] == ["tick", "tick", "tick"]
        assert cancel_timer(ref) is None  # the owner exited: its timers died with it

    async def test_timers_die_with_their_owner(self) -> None:
        def setup(me: Actor) -> Any:
            return [send_interval(me.pid, "tick", 0.005), send_after(me.pid, "x", 30)]

        got, refs = await collect(setup, 1)
        assert got[:1] == ["tick"]  # a late second tick may land before the owner stops
        assert processes() == []
        assert all(r.cancelled or cancel_timer(r) is not None for r in refs)


class TestReadTimer:
    async def test_read_timer_reports_the_seconds_left_without_cancelling(self) -> None:
        def setup(me: Actor) -> Any:
            ref = send_after(me.pid, "fired", 0.05)
            return read_timer(ref)

        got, left = await collect(setup, 1)
        assert got == ["fired"]  # reading did not cancel it
        assert left is not None
        assert 0 < left <= 0.05

    async def test_read_timer_returns_none_once_a_one_shot_timer_fired(self) -> None:
        def setup(me: Actor) -> Any:
            return send_after(me.pid, "fired", 0)

        got, ref = await collect(setup, 1)
        assert got == ["fired"]
        assert read_timer(ref) is None

    async def test_read_timer_returns_none_after_cancel_timer(self) -> None:
        def setup(me: Actor) -> Any:
            ref = send_after(me.pid, "never", 10.0)
            cancel_timer(ref)
            send_after(me.pid, "after", 0)
            return read_timer(ref)

        got, left = await collect(setup, 1)
        assert got == ["after"]
        assert left is None

    async def test_read_timer_on_an_interval_timer_gives_the_time_to_the_next_tick(
        self,
    ) -> None:
        def setup(me: Actor) -> Any:
            return send_interval(me.pid, "tick", 0.01)

        async with anyio.create_task_group() as tg:
            got: list[Any] = []
            done = anyio.Event()
            pid = await Collector.start(setup, got, done, 2, task_group=tg)
            with anyio.fail_after(3):
                await done.wait()
            left = read_timer(route(pid).body.refs)  # type: ignore[union-attr]
            tg.cancel_scope.cancel()
        assert left is not None
        assert 0 <= left <= 0.01

    async def test_read_timer_returns_none_when_the_owner_exited(self) -> None:
        def setup(me: Actor) -> Any:
            return send_after(me.pid, "never", 30.0)

        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Collector.start(setup, [], done, 1, task_group=tg)
            ref = route(pid).body.refs  # type: ignore[union-attr]
            assert read_timer(ref) is not None
            tg.cancel_scope.cancel()
        assert read_timer(ref) is None

    def test_read_timer_of_something_else_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"read_timer\(\) takes the TimerRef"):
            read_timer(1.5)  # type: ignore[arg-type]

    def test_read_timer_of_a_sync_server_timer_works_from_any_thread(self) -> None:
        from anyotp.sync import GenServer as SyncGenServer

        class Alarm(SyncGenServer[int]):
            def init(self) -> int:
                self.ref = send_after(self.pid, "ring", 30.0)  # on the shared timer thread
                return 0

            def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
                return read_timer(self.ref), state

        with Alarm() as alarm:
            left = alarm.call({}, timeout=5.0)
            assert left is not None
            assert 25.0 < left <= 30.0
            here = read_timer(alarm.ref)  # from this thread, not the server's
            assert here is not None
            assert here <= left
            assert cancel_timer(alarm.ref) is not None
            assert read_timer(alarm.ref) is None
