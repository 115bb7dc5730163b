"""The generic call protocol: ``From`` as data, and how ``call`` fails on a name.

Mirrors ``anyotp/_core/_gen.py``.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anyotp import (
    Actor,
    CallNoProc,
    CallTimeout,
    From,
    GenServer,
    NoReply,
    Registry,
    Via,
    call,
    cast,
    reply,
)
from anyotp._core import TIMEOUT, _gen, current_loop, table
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Deferred(GenServer):
    """Answers ``"wait"`` later, through a pickled copy of its ``From``."""

    async def init(self) -> None:
        self.pickled: bytes | None = None

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "wait":
            self.pickled = pickle.dumps(from_)
            return NoReply(state)
        return self.pickled is not None, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        assert self.pickled is not None
        copy = pickle.loads(self.pickled)
        assert isinstance(copy, From)
        reply(copy, request)
        return state


class TestFrom:
    async def test_a_from_survives_pickling_and_a_reply_on_the_copy_reaches_the_caller(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Deferred.start(task_group=tg)
            answer: list[Any] = []
            answered = anyio.Event()

            async def caller() -> None:
                answer.append(await call(pid, "wait", timeout=5.0))
                answered.set()

            tg.start_soon(caller)
            await wait_until(lambda: call(pid, "pickled?"), what="the server holds the From")
            await cast(pid, 42)
            with anyio.fail_after(5):
                await answered.wait()
            assert answer == [42]
            tg.cancel_scope.cancel()

    async def test_a_call_whose_from_was_pickled_leaves_no_reply_alias_behind(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Deferred.start(task_group=tg)
            before = dict(_gen._aliases)
            with pytest.raises(CallTimeout, match="timed out"):
                await call(pid, "wait", timeout=0.05)
            assert await call(pid, "pickled?")
            assert _gen._aliases == before, "the timed-out call's From is still reachable"
            await cast(pid, "late")  # a late reply through the copy is discarded
            assert await call(pid, "pickled?")
            tg.cancel_scope.cancel()

    def test_a_reply_to_a_caller_whose_event_loop_closed_is_dropped(self) -> None:
        loop = asyncio.new_event_loop()
        fut = loop.create_future()
        fut.add_done_callback(lambda f: None)  # as the task awaiting it would
        loop.close()
        from_ = _gen.From(None, fut)
        errors: list[BaseException] = []

        def reply_from_another_thread() -> None:
            try:
                from_.reply("late")
            except BaseException as e:  # pragma: no cover - the failure being tested
                errors.append(e)

        t = threading.Thread(target=reply_from_another_thread)
        t.start()
        t.join()
        from_.reply("late")  # from the caller's own thread
        assert errors == []
        assert fut.done()  # it is set; nobody is woken by it


class Slow(GenServer):
    """Answers after a short pause of its own, when its caller is asleep waiting."""

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        await anyio.sleep(0.02)
        return request, state


class TestCallFromAnotherLoop:
    async def test_a_process_s_code_calling_from_an_event_loop_in_a_worker_thread(
        self,
    ) -> None:
        # The worker thread inherits the process's context (current_process is the
        # process), but the call runs on the worker's own loop: it must wait there.
        async with anyio.create_task_group() as tg:
            srv = await Slow.start(task_group=tg)

            got: list[Any] = []

            def worker() -> Any:
                return asyncio.run(call(srv, "hi", timeout=5.0))

            class Caller(Actor):
                async def run(self, state: Any) -> Any:
                    got.append(await anyio.to_thread.run_sync(worker))
                    self.stop()

            with anyio.fail_after(5):
                await Caller.start(task_group=tg)
                await wait_until(lambda: got, timeout=5, what="the call's reply")
            assert got == ["hi"]
            tg.cancel_scope.cancel()


class TestCallByName:
    async def test_call_to_a_via_name_with_a_missing_key_raises_callnoproc(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            with pytest.raises(CallNoProc, match="via-name") as info:
                await call(Via(reg, "missing"), "ping")
            assert isinstance(info.value, LookupError)
            with pytest.raises(CallNoProc, match="via-name"):
                await call(("via", reg, "missing"), "ping")
            tg.cancel_scope.cancel()


class TestNothingOutlivesACall:
    async def test_a_process_that_made_a_timed_call_is_freed_when_it_exits(self) -> None:
        # A timed call's timeout must not keep the caller (and its state) reachable
        # until the timeout would have expired.
        import gc
        import weakref

        from anyotp import GenServer, call, exit_process
        from anyotp.testing import watch_exit

        class State:
            pass

        class Echo(GenServer):
            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return request, state

        refs: list[weakref.ref[State]] = []

        class Caller(GenServer):
            async def init(self, server: Any) -> None:
                self.big = State()
                refs.append(weakref.ref(self.big))
                await call(server, "x", timeout=30.0)

        async with anyio.create_task_group() as tg:
            server = await Echo.start(task_group=tg)
            caller = await Caller.start(server, task_group=tg)
            watch = watch_exit(caller)
            exit_process(caller, "kill")
            await watch.reason()
            del watch
            await wait_until(
                lambda: gc.collect() >= 0 and refs[0]() is None,
                what="the dead caller's state to be freed",
            )
            tg.cancel_scope.cancel()

    async def test_a_reply_is_not_kept_alive_by_the_timeout_of_its_call(self) -> None:
        # A call with a long timeout is armed lazily (asyncio) or on the wheel: once
        # the call returned, nothing keeps its reply alive until the timeout.
        import gc
        import weakref

        class Reply:
            pass

        refs: list[weakref.ref[Reply]] = []

        class Slow(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                if request == "later":  # answered after the call waited a while
                    self.pending = from_
                    return NoReply(state)
                value = Reply()
                refs.append(weakref.ref(value))
                reply(self.pending, value)
                self.pending = None
                return None, state

        async with anyio.create_task_group() as tg:
            pid = await Slow.start(task_group=tg)
            got: list[Any] = []

            async def caller() -> None:
                got.append(await call(pid, "later", timeout=60.0))

            tg.start_soon(caller)
            await wait_until(lambda: getattr(_proc(pid).body, "pending", None) is not None)
            wheel = current_loop().wheel  # type: ignore[union-attr]
            if wheel is not None:  # asyncio: the sweep moved the waiting call to the wheel
                await wait_until(lambda: wheel.moved, what="the call to be on the wheel")
            await call(pid, "answer")
            await wait_until(lambda: got, what="the deferred reply")
            assert isinstance(got[0], Reply)
            got.clear()
            await wait_until(
                lambda: gc.collect() >= 0 and refs[0]() is None,
                what="the reply to be freed once its call returned",
            )
            tg.cancel_scope.cancel()


def _proc(pid: Any) -> Any:
    return table[pid.id]


class TestTimedCalls:
    async def test_a_sweep_fails_a_wait_that_is_not_seconds_and_arms_the_others(
        self,
    ) -> None:
        # asyncio's lazy sweep runs in a loop callback: a bad entry (a caller's bug)
        # fails its own wait and must not stop the sweep from arming the rest
        loop = current_loop()
        assert loop is not None
        wheel = loop.wheel
        if wheel is None:
            pytest.skip("trio arms each wait at once, in its caller")
        bad, good = asyncio.get_running_loop().create_future(), loop.new_waiter()
        wheel.defer(bad, "soon")  # type: ignore[arg-type]
        with anyio.fail_after(5):
            assert await good.wait(0.06) is TIMEOUT
        with pytest.raises(TypeError, match=r"a timed wait of 'soon': not a number of seconds"):
            bad.result()

    async def test_a_wait_too_long_for_a_float_never_ends_and_spoils_no_other(self) -> None:
        # The timeout wheels take any deadline: one past what a float holds (an int
        # of 10**400 seconds) never fires, and does not stop the wait beside it from
        # timing out (on asyncio both are armed by the same sweep).
        loop = current_loop()
        assert loop is not None
        forever, short = loop.new_waiter(), loop.new_waiter()
        ended: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def wait_forever() -> None:
                ended.append(await forever.wait(10**400))

            tg.start_soon(wait_forever)
            await anyio.lowlevel.checkpoint()  # its wait is armed first
            with anyio.fail_after(5):
                assert await short.wait(0.06) is TIMEOUT
            assert ended == []
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("timeout", [0.01, 0.06, 0.2])
    async def test_a_timed_call_never_times_out_early_nor_much_late(self, timeout: float) -> None:
        # Short timeouts go on the timeout wheel at once, long ones lazily (asyncio):
        # either way the call fails no earlier than its timeout, and within a few
        # ticks after it.
        class Mute(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return NoReply(state)

        async with anyio.create_task_group() as tg:
            pid = await Mute.start(task_group=tg)
            for _ in range(3):
                began = anyio.current_time()
                with pytest.raises(CallTimeout):
                    await call(pid, "x", timeout=timeout)
                elapsed = anyio.current_time() - began
                assert timeout <= elapsed < timeout + 0.25, elapsed
            tg.cancel_scope.cancel()

    async def test_many_concurrent_timed_calls_each_time_out_once(self) -> None:
        class Mute(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return NoReply(state)

        outcomes: list[str] = []

        async def one(pid: Any, timeout: float) -> None:
            try:
                await call(pid, "x", timeout=timeout)
                outcomes.append("reply")
            except CallTimeout:
                outcomes.append("timeout")

        async with anyio.create_task_group() as tg:
            pid = await Mute.start(task_group=tg)
            with anyio.fail_after(5):
                async with anyio.create_task_group() as calls:
                    for i in range(200):
                        calls.start_soon(one, pid, 0.05 + (i % 4) * 0.02)
            tg.cancel_scope.cancel()
        assert outcomes == ["timeout"] * 200

    async def test_an_infinite_timeout_waits_forever_and_breaks_no_other_timeout(
        self,
    ) -> None:
        import math

        class Mute(GenServer):
            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return NoReply(state)

        waiting = anyio.Event()
        outcomes: list[str] = []

        async def forever(pid: Any) -> None:
            waiting.set()
            try:
                await call(pid, "forever", timeout=math.inf)
            except anyio.get_cancelled_exc_class():
                outcomes.append("still waiting when cancelled")
                raise

        async with anyio.create_task_group() as tg:
            pid = await Mute.start(task_group=tg)
            tg.start_soon(forever, pid)
            await waiting.wait()
            with pytest.raises(CallTimeout):
                await call(pid, "short", timeout=0.1)
            tg.cancel_scope.cancel()
        assert outcomes == ["still waiting when cancelled"]
