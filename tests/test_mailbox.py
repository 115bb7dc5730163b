"""Mailboxes: FIFO order, selective receive, timeouts, and senders on other threads."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _helpers
import anyotp
from _helpers import drain
from anyotp import ANY, IGNORE, Actor, ReceiveTimeout
from anyotp._core import Mailbox, compile_patterns, current_loop, is_awaitable
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio

Body = Callable[[Actor], Awaitable[Any]]


async def in_actor(body: Body) -> Any:
    """Run ``body(actor)`` inside a fresh actor; return its result or raise its error."""
    return await _helpers.in_actor(lambda me, tg: body(me))


def fill(actor: Actor, *messages: Any) -> None:
    for m in messages:
        anyotp.send_nowait(actor.pid, m)


class TestFifo:
    async def test_messages_from_one_sender_arrive_in_the_order_sent(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, *range(100))
            return [await me.receive((ANY, lambda m: m)) for _ in range(100)]

        assert await in_actor(body) == list(range(100))

    async def test_a_receive_waits_for_a_message_sent_later(self) -> None:
        ready = anyio.Event()
        got: list[Any] = []

        class Waiter(Actor):
            async def run(self, state: Any) -> Any:
                ready.set()
                got.append(await self.receive((("hello", ANY), lambda x: x)))
                self.stop()

        async with anyio.create_task_group() as tg:
            pid = await Waiter.start(task_group=tg)
            await ready.wait()
            await anyotp.send(pid, ("hello", "world"))
            await wait_until(lambda: not anyotp.is_alive(pid), timeout=2, what="the exit")
        assert got == ["world"]


class TestSelectiveReceive:
    async def test_receive_takes_the_first_matching_message_and_leaves_the_rest_in_order(
        self,
    ) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("a", 1), ("b", 1), ("a", 2), ("b", 2))
            first = await me.receive((("b", ANY), lambda n: ("b", n)))
            return first, await drain(me)

        first, rest = await in_actor(body)
        assert first == ("b", 1)
        assert rest == [("a", 1), ("a", 2), ("b", 2)]

    async def test_a_different_pattern_after_a_selective_receive_sees_skipped_messages_in_order(
        self,
    ) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2), ("a", 4))
            bs = [await me.receive((("b", ANY), lambda n: n)) for _ in range(2)]
            a_first = await me.receive((("a", ANY), lambda n: n))
            return bs, a_first, await drain(me)

        bs, a_first, rest = await in_actor(body)
        assert bs == [1, 2]
        assert a_first == 1
        assert rest == [("a", 2), ("a", 3), ("a", 4)]

    async def test_a_message_arriving_after_a_selective_receive_goes_behind_the_skipped_ones(
        self,
    ) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("a", 1), ("b", 1))
            await me.receive((("b", ANY), lambda n: n))
            fill(me, ("a", 2))
            with pytest.raises(ReceiveTimeout):
                await me.receive((("b", ANY), lambda n: n), timeout=0)
            fill(me, ("a", 3))
            return await drain(me)

        assert await in_actor(body) == [("a", 1), ("a", 2), ("a", 3)]

    async def test_the_oldest_message_wins_over_the_order_of_the_patterns(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("second", 1), ("first", 2))
            return await me.receive(
                (("first", ANY), lambda n: ("first", n)),
                (("second", ANY), lambda n: ("second", n)),
            )

        assert await in_actor(body) == ("second", 1)

    async def test_a_message_matching_several_patterns_goes_to_the_first_of_them(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("tag", 1))
            return await me.receive(
                (("tag", int), lambda n: ("int", n)),
                (("tag", ANY), lambda n: ("any", n)),
            )

        assert await in_actor(body) == ("int", 1)

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
    @given(flags=st.lists(st.booleans(), max_size=30))
    async def test_receiving_all_matches_yields_the_matching_subsequence_and_keeps_the_rest(
        self, flags: list[bool]
    ) -> None:
        messages = [("match" if f else "other", i) for i, f in enumerate(flags)]

        async def body(me: Actor) -> Any:
            fill(me, *messages)
            got = []
            while True:
                try:
                    got.append(await me.receive((("match", IGNORE), lambda: None), timeout=0))
                except ReceiveTimeout:
                    break
            return len(got), await drain(me)

        n, rest = await in_actor(body)
        assert n == sum(flags)
        assert rest == [m for m in messages if m[0] == "other"]


# The same property against the Mailbox itself, with puts and receives interleaved and
# the pattern changing between receives (which exercises the "already rejected"
# bookkeeping a repeated receive resumes from).
_TAGS = ("a", "b", "c")
_RECEIVES = {
    "a": (("a", ANY),),
    "b": (("b", ANY),),
    "a|b": (("a", ANY), ("b", ANY)),
}
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(_TAGS)),
        st.tuples(st.just("recv"), st.sampled_from(sorted(_RECEIVES))),
    ),
    max_size=60,
)


class TestMailboxModel:
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=ops)
    async def test_selective_receive_behaves_like_taking_the_first_match_from_a_list(
        self, ops: list[tuple[str, str]]
    ) -> None:
        loop = current_loop()
        assert loop is not None
        box = Mailbox(loop.new_waiter, loop.aio)  # as a process makes it
        model: list[tuple[str, int]] = []
        for seq, (op, arg) in enumerate(ops):
            if op == "put":
                box.put((arg, seq))
                model.append((arg, seq))
                continue
            key = compile_patterns(_RECEIVES[arg])
            wanted = set(arg.split("|"))
            expected = next((m for m in model if m[0] in wanted), None)
            if expected is None:
                with pytest.raises(ReceiveTimeout):
                    await box.receive(key, 0)
            else:
                _, (n,) = await box.receive(key, 0)
                assert n == expected[1]
                model.remove(expected)
            assert box.messages() == model
            assert len(box) == len(model)
        assert box.messages() == model

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        ops=st.lists(
            st.one_of(
                st.tuples(st.just("put"), st.sampled_from(_TAGS)),
                st.tuples(st.just("recv"), st.sampled_from(sorted(_RECEIVES))),
                st.tuples(st.just("get"), st.just("")),
                st.tuples(st.just("ref"), st.just("")),
                st.tuples(st.just("reply"), st.integers(0, 3)),
                st.tuples(st.just("await"), st.integers(0, 3)),
            ),
            max_size=60,
        )
    )
    async def test_a_receive_after_a_mark_finds_what_a_full_scan_finds(
        self, ops: list[tuple[str, Any]]
    ) -> None:
        # Marks (Mailbox.mark: where the mailbox ended when a reference was made) let
        # a receive for that reference skip what was queued before; whatever else
        # happens in between (takes, selective receives, other marks), the result and
        # the mailbox left behind are those of a full scan.
        loop = current_loop()
        assert loop is not None
        box = Mailbox(loop.new_waiter, loop.aio)  # as a process makes it
        model: list[Any] = []
        marks: list[tuple[int, int]] = []
        for seq, (op, arg) in enumerate(ops):
            if op == "put":
                box.put((arg, seq))
                model.append((arg, seq))
            elif op == "recv":
                key = compile_patterns(_RECEIVES[arg])
                wanted = set(arg.split("|"))
                expected = next((m for m in model if m[0] in wanted), None)
                if expected is None:
                    with pytest.raises(ReceiveTimeout):
                        await box.receive(key, 0)
                else:
                    await box.receive(key, 0)
                    model.remove(expected)
            elif op == "get":
                got = await box.get(0)
                if model:
                    assert got == model.pop(0)
            elif op == "ref":
                marks.append(box.mark())
            elif arg < len(marks):
                ref_key = compile_patterns((("reply", arg, ANY),))
                if op == "reply":
                    box.put(("reply", arg, seq))
                    model.append(("reply", arg, seq))
                    continue
                expected = next((m for m in model if m[:2] == ("reply", arg)), None)
                if expected is None:
                    with pytest.raises(ReceiveTimeout):
                        await box.receive(ref_key, 0, marks[arg])
                else:
                    _, (n,) = await box.receive(ref_key, 0, marks[arg])
                    assert n == expected[2]
                    model.remove(expected)
            assert box.messages() == model

    async def test_a_receive_after_a_mark_waits_for_a_message_that_arrives_later(
        self,
    ) -> None:
        loop = current_loop()
        assert loop is not None
        box = Mailbox(loop.new_waiter, loop.aio)  # as a process makes it
        for i in range(1000):
            box.put(("noise", i))
        mark = box.mark()
        key = compile_patterns((("reply", ANY),))

        async def reply_later() -> None:
            await anyio.lowlevel.checkpoint()
            box.put(("noise", "late"))
            await anyio.lowlevel.checkpoint()
            box.put(("reply", 42))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reply_later)
            with anyio.fail_after(5):
                assert await box.receive(key, None, mark) == (0, (42,))
        assert box.messages(3) == [("noise", 0), ("noise", 1), ("noise", 2)]
        assert len(box) == 1001

    async def test_get_is_woken_by_puts_from_another_thread_every_time(self) -> None:
        loop = current_loop()
        assert loop is not None
        box = Mailbox(loop.new_waiter, loop.aio)  # as a process makes it
        taken = queue.Queue[int]()

        def sender() -> None:
            for i in range(300):
                box.put(i)
                assert taken.get(timeout=5) == i  # the owner waits again before the next

        thread = threading.Thread(target=sender)
        thread.start()
        try:
            with anyio.fail_after(10):
                for i in range(300):
                    assert await box.get() == i
                    taken.put(i)
        finally:
            await anyio.to_thread.run_sync(thread.join)
        assert len(box) == 0

    async def test_two_tasks_receiving_from_one_mailbox_is_an_error(self) -> None:
        loop = current_loop()
        assert loop is not None
        box = Mailbox(loop.new_waiter, loop.aio)  # as a process makes it
        key = compile_patterns((ANY,))
        waiting = anyio.Event()

        async def first() -> None:
            waiting.set()
            await box.receive(key, None)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await waiting.wait()  # `first` publishes its waiter before it yields
            with pytest.raises(RuntimeError, match="two tasks are receiving"):
                await box.receive(key, None)
            box.put("wake")


class TestTimeouts:
    async def test_timeout_zero_returns_a_match_already_in_the_mailbox(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, "other", ("x", 1))
            return await me.receive((("x", ANY), lambda n: n), timeout=0)

        assert await in_actor(body) == 1

    async def test_timeout_zero_does_not_wait_for_new_messages(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, "other")
            start = anyio.current_time()
            with pytest.raises(ReceiveTimeout, match=r"timeout=0\b.*1 non-matching"):
                await me.receive((("x", ANY), lambda n: n), timeout=0)
            return anyio.current_time() - start

        assert await in_actor(body) < 0.5

    async def test_ReceiveTimeout_is_a_TimeoutError_and_leaves_messages_in_place(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, "one", ("two", 2), 3)
            start = anyio.current_time()
            with pytest.raises(TimeoutError, match=r"within 0.05 s") as info:
                await me.receive((("x", ANY), lambda n: n), timeout=0.05)
            elapsed = anyio.current_time() - start
            return info.value, elapsed, await drain(me)

        error, elapsed, rest = await in_actor(body)
        assert isinstance(error, ReceiveTimeout)
        assert elapsed >= 0.04
        assert rest == ["one", ("two", 2), 3]

    async def test_a_timeout_of_None_waits_until_a_message_comes(self) -> None:
        async def body(me: Actor) -> Any:
            async def later() -> None:
                await anyio.sleep(0.02)
                await anyotp.send(me.pid, "late")

            me.start_soon_child(later)
            return await me.receive(("late", lambda: "got it"), timeout=None)

        assert await in_actor(body) == "got it"


class TestPredicatesInReceive:
    async def test_a_predicate_that_raises_does_not_lose_the_message(self) -> None:
        def picky(m: Any) -> bool:
            if m == "poison":
                raise ValueError("cannot judge poison")
            return False

        async def body(me: Actor) -> Any:
            fill(me, "skip", "poison", "after")
            with pytest.raises(ValueError, match="cannot judge poison"):
                await me.receive((picky, lambda m: m))
            return await drain(me)

        assert await in_actor(body) == ["skip", "poison", "after"]

    async def test_a_predicate_pattern_extracts_the_matched_message(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, 1, 2, 3, 4)
            return await me.receive((lambda m: m % 2 == 0, lambda m: m)), await drain(me)

        assert await in_actor(body) == (2, [1, 3, 4])


class TestHandlers:
    async def test_receive_returns_a_sync_handler_s_result(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("add", 2, 3))
            return await me.receive((("add", int, int), lambda a, b: a + b))

        assert await in_actor(body) == 5

    async def test_receive_awaits_an_async_handler_and_returns_its_result(self) -> None:
        async def add(a: int, b: int) -> int:
            await anyio.lowlevel.checkpoint()
            return a + b

        async def body(me: Actor) -> Any:
            fill(me, ("add", 2, 3))
            return await me.receive((("add", int, int), add))

        assert await in_actor(body) == 5

    async def test_is_awaitable_tells_awaitables_by_type_and_forgets_past_its_bound(
        self,
    ) -> None:
        class Later:
            def __await__(self) -> Any:
                yield from ()

        async def coro() -> None:
            pass

        c = coro()
        loop = asyncio._get_running_loop()  # None on trio
        fut = None if loop is None else loop.create_future()
        try:
            assert is_awaitable(c)
            assert is_awaitable(Later())
            assert fut is None or is_awaitable(fut)
            assert not is_awaitable(None)
            assert not is_awaitable(1)
            assert not is_awaitable("s")
            # more types than the cache keeps: it starts again and stays right
            for i in range(5000):
                kind = type(f"K{i}", (), {"__await__": Later.__await__} if i % 2 else {})
                assert is_awaitable(kind()) == bool(i % 2)
            assert is_awaitable(Later())
            assert not is_awaitable(1)
        finally:
            c.close()

    async def test_any_awaitable_a_handler_returns_is_awaited_and_other_values_are_not(
        self,
    ) -> None:
        class Later:
            """Awaitable through __await__, not a coroutine."""

            def __init__(self, value: Any) -> None:
                self.value = value

            def __await__(self) -> Any:
                yield from anyio.lowlevel.checkpoint().__await__()
                return self.value

        class Plain:
            pass

        plain = Plain()
        values: list[Any] = [None, 1, "s", (1, 2), plain, Later(7), None, Later("x"), plain]

        async def body(me: Actor) -> Any:
            got = []
            for v in values:  # each type seen twice: learnt, then looked up
                fill(me, ("v", v))
                got.append(await me.receive((("v", ANY), lambda x: x)))
            return got

        assert await in_actor(body) == [None, 1, "s", (1, 2), plain, 7, None, "x", plain]

    async def test_a_handler_of_a_pattern_that_extracts_nothing_takes_no_arguments(self) -> None:
        async def body(me: Actor) -> Any:
            fill(me, ("ping", "ignored"))
            return await me.receive((("ping", IGNORE), lambda: "pong"))

        assert await in_actor(body) == "pong"


class TestSendFromThreads:
    async def test_messages_from_two_threads_all_arrive_in_per_thread_order(self) -> None:
        per_thread = 5000
        go = threading.Event()

        def producer(pid: anyotp.PID, name: str) -> None:
            go.wait(5)
            for i in range(per_thread):
                anyotp.send_nowait(pid, (name, i))  # a plain function: any thread

        async def body(me: Actor) -> Any:
            threads = [
                threading.Thread(target=producer, args=(me.pid, name)) for name in ("t1", "t2")
            ]
            for t in threads:
                t.start()
            go.set()
            got = [
                await me.receive(((str, int), lambda n, i: (n, i))) for _ in range(2 * per_thread)
            ]
            for t in threads:
                await anyio.to_thread.run_sync(t.join)
            return got

        got = await in_actor(body)
        assert len(got) == 2 * per_thread
        for name in ("t1", "t2"):
            assert [i for n, i in got if n == name] == list(range(per_thread))

    async def test_a_message_from_a_thread_always_wakes_a_waiting_receiver(self) -> None:
        rounds = 1000
        acks: queue.Queue[int] = queue.Queue()

        def ping_pong(pid: anyotp.PID) -> None:
            for i in range(rounds):
                anyotp.send_nowait(pid, ("ping", i))
                assert acks.get(timeout=5) == i  # the actor parks again before the next one

        async def body(me: Actor) -> Any:
            thread = threading.Thread(target=ping_pong, args=(me.pid,))
            thread.start()
            for i in range(rounds):
                assert await me.receive((("ping", int), lambda n: n)) == i
                acks.put(i)
            await anyio.to_thread.run_sync(thread.join)
            return await drain(me)

        assert await in_actor(body) == []
