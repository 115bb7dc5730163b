"""The generic call protocol: ``From`` as data, and how ``call`` fails on a name.

Mirrors ``anyotp/_core/_gen.py``.
"""

from __future__ import annotations

import pickle
from typing import Any

import anyio
import pytest

from anyotp import (
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
from anyotp._core import _gen
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
