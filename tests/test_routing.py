"""Routing: send semantics, colour (what is async and what is not), fairness, exit
signals a process sends itself.

Mirrors ``anyotp/_core/_routing.py``: ``send``/``cast`` and their ``_nowait`` pairs,
``exit_process``, and what happens to each on a dead PID, an unknown name or a
via-name that resolves to nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anyotp import (
    Actor,
    From,
    GenServer,
    KeepState,
    NoProcess,
    Registry,
    StateMachine,
    Via,
    call,
    cast,
    cast_nowait,
    exit_process,
    is_alive,
    register,
    self_pid,
    send,
)
from anyotp.testing import wait_until, watch_exit

pytestmark = pytest.mark.anyio


class Inbox(GenServer):
    """Keeps every cast and info message; ``call(pid, "log")`` returns them."""

    async def init(self) -> list[Any]:
        return []

    async def handle_call(self, request: Any, from_: From, state: list[Any]) -> Any:
        return state, state

    async def handle_cast(self, request: Any, state: list[Any]) -> list[Any]:
        return [*state, ("cast", request)]

    async def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
        return [*state, ("info", message)]


class Sink(Actor):
    """Never reads its mailbox."""

    async def run(self, state: Any) -> Any:
        await anyio.sleep_forever()


class Counter(GenServer):
    """Counts the casts it handled in ``handled[0]``."""

    async def init(self, handled: list[int]) -> None:
        self.handled = handled

    async def handle_cast(self, request: Any, state: Any) -> Any:
        self.handled[0] += 1
        return state


# --------------------------------------------------------------------------- colour


class TestColour:
    async def test_cast_can_be_started_as_a_task_with_start_soon(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Inbox.start(task_group=tg)
            tg.start_soon(cast, pid, "hello")
            await wait_until(lambda: call(pid, "log"), what="the cast arrived")
            assert await call(pid, "log") == [("cast", "hello")]
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("anyio_backend", ["asyncio"])
    async def test_send_can_be_wrapped_in_an_asyncio_task(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Inbox.start(task_group=tg)
            await asyncio.create_task(send(pid, "hello"))
            assert await call(pid, "log") == [("info", "hello")]
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("anyio_backend", ["trio"])
    async def test_send_can_be_started_in_a_trio_nursery(self) -> None:
        import trio

        async with anyio.create_task_group() as tg:
            pid = await Inbox.start(task_group=tg)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send, pid, "hello")
            assert await call(pid, "log") == [("info", "hello")]
            tg.cancel_scope.cancel()

    async def test_a_tight_send_loop_lets_a_sibling_run_and_is_cancelled_by_a_deadline(
        self,
    ) -> None:
        sent = 0
        observed: list[int] = []

        async def sibling() -> None:
            while True:
                observed.append(sent)
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            pid = await Sink.start(task_group=tg)
            tg.start_soon(sibling)
            with anyio.move_on_after(0.05) as scope:
                for i in range(300_000):
                    await send(pid, i)
                    sent += 1
            assert scope.cancelled_caught, "300,000 sends finished before a 0.05 s deadline"
            assert 0 < sent < 300_000
            assert any(0 < n < sent for n in observed), "the sibling never ran mid-loop"
            tg.cancel_scope.cancel()

    async def test_send_without_await_delivers_nothing_and_warns(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Inbox.start(task_group=tg)
            with pytest.warns(RuntimeWarning, match="was never awaited"):
                send(pid, "lost")
            assert await call(pid, "log") == []
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------------- fairness


class Ticker(Actor):
    """Appends the time to ``ticks`` every 10 ms."""

    async def init(self, ticks: list[float]) -> None:
        self.ticks = ticks

    async def run(self, state: Any) -> Any:
        await anyio.sleep(0.01)
        self.ticks.append(anyio.current_time())
        return state


class Spinner(Actor):
    """A ``run`` that never awaits."""

    async def init(self, turns: list[int]) -> int:
        self.turns = turns
        return 0

    async def run(self, state: int) -> int:
        self.turns[0] = state + 1
        return state + 1


class TestFairness:
    async def test_a_ticker_keeps_ticking_while_threads_flood_a_genserver(self) -> None:
        handled = [0]
        ticks: list[float] = []
        stop = threading.Event()

        def flood(pid: Any) -> None:
            sent = 0
            while not stop.is_set():
                if sent - handled[0] < 5_000:  # keep the mailbox full, not unbounded
                    cast_nowait(pid, sent)
                    sent += 1
                else:
                    time.sleep(0)

        async with anyio.create_task_group() as tg:
            server = await Counter.start(handled, task_group=tg)
            threads = [threading.Thread(target=flood, args=(server,)) for _ in range(3)]
            for t in threads:
                t.start()
            try:
                await wait_until(lambda: handled[0] > 1_000, what="the flood reached the server")
                await Ticker.start(ticks, task_group=tg)
                before = handled[0]
                # A starved ticker would not tick at all until the flood ends; the
                # deadline is generous so that a loaded machine does not fail the test.
                await wait_until(lambda: len(ticks) >= 3, timeout=10.0, what="three ticks")
                during = handled[0]
            finally:
                stop.set()
                for t in threads:
                    t.join()
            # the server kept handling the flood while the ticker ticked: they shared
            # the loop (without the reduction budget the ticker waits for the flood)
            assert during > before
            tg.cancel_scope.cancel()

    async def test_an_actor_whose_run_never_awaits_lets_a_sibling_stop_it(self) -> None:
        turns = [0]
        async with anyio.create_task_group() as tg:
            pid = await Spinner.start(turns, task_group=tg)
            watch = watch_exit(pid)
            # this task is the sibling: it runs while the spinner spins
            await wait_until(lambda: turns[0] > 1_000, what="the spinner spun")
            exit_process(pid, "shutdown")
            assert await watch.reason() == "shutdown"

    async def test_an_actor_whose_run_never_awaits_is_stopped_by_cancelling_its_task_group(
        self,
    ) -> None:
        turns = [0]
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                pid = await Spinner.start(turns, task_group=tg)
                watch = watch_exit(pid)
                await wait_until(lambda: turns[0] > 1_000, what="the spinner spun")
                tg.cancel_scope.cancel()
        assert await watch.reason() == "shutdown"

    async def test_a_genserver_with_a_burst_of_casts_lets_a_sibling_run_between_them(
        self,
    ) -> None:
        handled = [0]
        observed: list[int] = []
        burst = 100_000

        async def sibling() -> None:
            while handled[0] < burst:
                observed.append(handled[0])
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            pid = await Counter.start(handled, task_group=tg)
            for i in range(burst):
                cast_nowait(pid, i)
            tg.start_soon(sibling)
            await wait_until(lambda: handled[0] == burst, timeout=10.0, what="every cast")
            assert any(0 < n < burst for n in observed), "the sibling never ran mid-burst"
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------- send semantics


async def dead_pid(tg: anyio.abc.TaskGroup) -> Any:
    pid = await Inbox.start(task_group=tg)
    watch = watch_exit(pid)
    exit_process(pid, "kill")
    await watch.reason()
    return pid


class Member(GenServer):
    """Joins ``topic`` in the registry ``reg``; keeps what it is sent."""

    async def init(self, reg: Any, topic: str) -> list[Any]:
        Registry.register(reg, topic)
        return []

    async def handle_call(self, request: Any, from_: From, state: list[Any]) -> Any:
        return state, state

    async def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
        return [*state, message]


class TestSendSemantics:
    async def test_send_cast_and_exit_to_a_dead_pid_are_dropped_silently(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await dead_pid(tg)
            await send(pid, "x")
            await cast(pid, "x")
            cast_nowait(pid, "x")
            exit_process(pid, "boom")
            assert not is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_send_cast_and_exit_to_an_unregistered_name_raise_noprocess_naming_it(
        self,
    ) -> None:
        with pytest.raises(NoProcess, match="'nobody'"):
            await send("nobody", "x")
        with pytest.raises(NoProcess, match=r"cast\(\) to 'nobody' failed"):
            await cast("nobody", "x")
        with pytest.raises(NoProcess, match=r"cast\(\) to 'nobody' failed"):
            cast_nowait("nobody", "x")
        with pytest.raises(NoProcess, match=r"exit_process\(\) to 'nobody' failed"):
            exit_process("nobody", "boom")

    async def test_a_name_whose_holder_died_raises_noprocess(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Inbox.start(task_group=tg)
            register("inbox", pid)
            watch = watch_exit(pid)
            exit_process(pid, "kill")
            await watch.reason()
            with pytest.raises(NoProcess, match="'inbox'"):
                await send("inbox", "x")
            tg.cancel_scope.cancel()

    async def test_a_via_name_with_a_missing_key_raises_noprocess(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            for op in (
                lambda: send(Via(reg, "missing"), "x"),
                lambda: cast(("via", reg, "missing"), "x"),
            ):
                with pytest.raises(NoProcess, match="via-name"):
                    await op()
            with pytest.raises(NoProcess, match="via-name"):
                exit_process(Via(reg, "missing"), "boom")
            tg.cancel_scope.cancel()

    async def test_a_via_name_of_a_dead_registry_raises_noprocess(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await Inbox.start(task_group=tg, name=Via(reg, "inbox"))
            watch = watch_exit(reg)
            exit_process(reg, "kill")
            await watch.reason()
            with pytest.raises(NoProcess, match=r"the registry <PID 0\.\d+> is not alive"):
                await send(Via(reg, "inbox"), "x")
            with pytest.raises(NoProcess, match=r"the registry <PID 0\.\d+> is not alive"):
                cast_nowait(("via", reg, "inbox"), "x")
            assert is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_dispatch_reaches_every_live_member_when_one_dies_mid_loop(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            members = [await Member.start(reg, "news", task_group=tg) for _ in range(3)]
            victim = members[1]
            watch = watch_exit(victim)

            async def publish(entries: list[tuple[Any, Any]]) -> None:
                for i, (pid, _) in enumerate(entries):
                    if i == 1:
                        exit_process(victim, "kill")
                        await watch.reason()
                    await send(pid, "extra")

            await Registry.dispatch(reg, "news", publish)
            assert await call(members[0], "log") == ["extra"]
            assert await call(members[2], "log") == ["extra"]
            assert not is_alive(victim)
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------------ self-exit


class Selfish(GenServer):
    """``("die", reason)`` sends itself an exit signal mid-callback."""

    async def init(self, log: list[Any], trap: bool = False) -> None:
        self.log = log
        self.trap_exit = trap

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return None, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        if request[0] == "die":
            self.log.append("before")
            exit_process(self_pid(), request[1])
            self.log.append("after")
        else:
            self.log.append(request)
        return state

    async def handle_info(self, message: Any, state: Any) -> Any:
        self.log.append(message)
        return state

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append(("terminate", reason))


class TestSelfExit:
    @pytest.mark.parametrize(
        ("reason", "exit_reason", "after"),
        [("boom", "boom", [("terminate", "boom")]), ("kill", "killed", [])],
    )
    async def test_an_exit_signal_to_itself_ends_the_callback_and_skips_queued_messages(
        self, reason: str, exit_reason: str, after: list[Any]
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Selfish.start(log, task_group=tg)
            watch = watch_exit(pid)
            cast_nowait(pid, ("die", reason))
            cast_nowait(pid, ("next",))
            assert await watch.reason() == exit_reason
        assert log == ["before", *after]

    async def test_a_trapping_server_gets_its_own_exit_signal_as_a_message(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Selfish.start(log, True, task_group=tg)
            cast_nowait(pid, ("die", "boom"))
            cast_nowait(pid, ("next",))
            await call(pid, "sync")
            assert log == ["before", "after", ("next",), ("EXIT", pid, "boom")]
            assert is_alive(pid)
            tg.cancel_scope.cancel()


# ---------------------------------------------------------- trap_exit StateMachine


class Trapper(StateMachine):
    trap_exit = True

    async def init(self) -> Any:
        return "idle", []

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type == "info":
            return state, [*data, content]
        if isinstance(event_type, tuple) and event_type[0] == "call":
            return KeepState(actions=[("reply", event_type[1], data)])
        return KeepState()


class TestTrapExitStateMachine:
    async def test_a_trapping_state_machine_gets_an_exit_from_outside_any_process_as_info(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Trapper.start(task_group=tg)
            exit_process(pid, "boom")
            assert await call(pid, "events") == [("EXIT", None, "boom")]
            assert is_alive(pid)
            tg.cancel_scope.cancel()
