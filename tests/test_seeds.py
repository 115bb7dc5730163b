"""The examples of the documented async API (seeds 000, 003, 004), run as written.

Only the import lines differ from the seeds: ``fauxtp`` (and its submodules
``fauxtp.primitives.pattern``, ``fauxtp.registry.local``, ``fauxtp.messaging``) is
``anyotp``, which exports everything from the top level.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    ANY,
    IGNORE,
    PID,
    Actor,
    ActorHandle,
    ExitError,
    GenServer,
    Ref,
    Task,
    TaskHandle,
    _,
    call,
    cast,
    is_alive,
    make_ref,
    match,
    register,
    registered,
    send,
    send_nowait,
    unregister,
    whereis,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


# =========================================================== seed 000: GenServer


class Stack(GenServer):
    async def init(self):
        return []

    async def handle_call(self, request, _from, state):
        match request:
            case "pop":
                if not state:
                    return None, []
                val = state[0]
                return val, state[1:]
            case "peek":
                return state[0] if state else None, state

    async def handle_cast(self, request, state):
        match request:
            case ("push", item):
                return [item] + state  # noqa: RUF005 -- as written in the seed


class TestSeedGenServer:
    async def test_stack_client_api_example(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)
            await cast(pid, ("push", 1))
            val = await call(pid, "pop")  # 1
            assert val == 1
            tg.cancel_scope.cancel()

    async def test_stack_push_pop_and_peek(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)
            assert await call(pid, "peek") is None
            assert await call(pid, "pop") is None
            for item in (1, 2, 3):
                await cast(pid, ("push", item))
            assert await call(pid, "peek") == 3
            assert await call(pid, "pop") == 3
            assert await call(pid, "pop") == 2
            assert await call(pid, "peek") == 1
            assert await call(pid, "pop") == 1
            assert await call(pid, "pop") is None
            tg.cancel_scope.cancel()

    async def test_handle_task_end_example_reports_success_and_failure(
        self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(100, logger="anyotp")  # the failing task's crash log

        class Worker(GenServer):
            async def init(self):
                return []

            async def handle_call(self, request, _from, state):
                match request:
                    case ("spawn", func):
                        return await self.spawn_task(func), state
                    case "ends":
                        return state, state

            async def handle_task_end(self, child_pid, status, result, state):
                match status:
                    case "success":
                        print(f"Task {child_pid} succeeded with {result}")
                    case "failure":
                        print(f"Task {child_pid} failed with {result}")
                return state + [(child_pid, status, result)]  # noqa: RUF005

        error = ValueError("bad")

        def fail() -> None:
            raise error

        async def succeed() -> int:
            await anyio.lowlevel.checkpoint()
            return 42

        async with anyio.create_task_group() as tg:
            pid = await Worker.start(task_group=tg)
            ok_pid = await call(pid, ("spawn", succeed))
            bad_pid = await call(pid, ("spawn", fail))
            assert isinstance(ok_pid, PID)

            async def both_ended() -> list[Any] | None:
                ends: list[Any] = await call(pid, "ends")
                return ends if len(ends) >= 2 else None

            ends = await wait_until(both_ended, timeout=2, what="both tasks ended")
            assert sorted(ends, key=lambda e: e[1]) == [
                (bad_pid, "failure", error),
                (ok_pid, "success", 42),
            ]
            tg.cancel_scope.cancel()
        out = capsys.readouterr().out
        assert f"Task {ok_pid} succeeded with 42" in out
        assert f"Task {bad_pid} failed with bad" in out


# =========================================================== seed 003: Actor API


class TestSeedActor:
    async def test_init_run_receive_and_terminate(self) -> None:
        events: list[Any] = []

        class Echo(Actor):
            async def init(self, *args: Any, **kwargs: Any) -> Any:
                events.append(("init", args, kwargs))
                return 0

            async def run(self, state: Any) -> Any:
                return await self.receive(
                    (("ping", PID), lambda sender: send_nowait(sender, ("pong", state))),
                    ("count", lambda: state + 1),
                    ("stop", lambda: self.stop()),
                )

            async def terminate(self, reason: str, state: Any) -> None:
                events.append(("terminate", reason))

        class Pinger(Actor):
            async def init(self, target: PID, out: list[Any]) -> None:
                self.target, self.out = target, out

            async def run(self, state: Any) -> Any:
                await send(self.target, ("ping", self.pid))
                reply = await self.receive((("pong", ANY), lambda n: n))
                self.out.append(reply)
                await anyio.sleep_forever()

        got: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(1, 2, task_group=tg, x=3)
            assert isinstance(pid, PID)
            await send(pid, "count")
            await send(pid, "count")
            await Pinger.start(pid, got, task_group=tg)
            await wait_until(lambda: got, timeout=2, what="a message")
            assert got == [2]
            await send(pid, "stop")
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")
            assert events == [("init", (1, 2), {"x": 3}), ("terminate", "normal")]
            tg.cancel_scope.cancel()

    async def test_receive_with_timeout_returns_or_raises(self) -> None:
        results: list[Any] = []

        class Waiter(Actor):
            async def run(self, state: Any) -> Any:
                try:
                    await self.receive(("never", lambda: None), timeout=0.01)
                except TimeoutError as e:
                    results.append(type(e).__name__)
                results.append(await self.receive((str, lambda s: s), timeout=None))
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            pid = await Waiter.start(task_group=tg)
            await wait_until(lambda: results, timeout=2, what="the receive timeout")
            await send(pid, "hello")
            await wait_until(lambda: len(results) >= 2, timeout=2, what="the message")
            assert results == ["ReceiveTimeout", "hello"]
            tg.cancel_scope.cancel()

    async def test_stop_with_a_reason_reaches_terminate(self) -> None:
        reasons: list[Any] = []

        class Stopper(Actor):
            async def run(self, state: Any) -> Any:
                self.stop("done")

            async def terminate(self, reason: str, state: Any) -> None:
                reasons.append(reason)

        async with anyio.create_task_group() as tg:
            pid = await Stopper.start(task_group=tg)
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")
            assert reasons == ["done"]
            tg.cancel_scope.cancel()

    async def test_pid_and_children_and_start_soon_child(self) -> None:
        seen: dict[str, Any] = {}
        child_ran = anyio.Event()

        class Parent(Actor):
            async def init(self) -> None:
                seen["pid"] = self.pid
                seen["children"] = self.children

                async def helper(tag: str) -> None:
                    seen["helper"] = tag
                    child_ran.set()
                    await anyio.sleep_forever()

                self.start_soon_child(helper, "hi", name="helper")

            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            pid = await Parent.start(task_group=tg)
            with anyio.fail_after(2):
                await child_ran.wait()
            assert seen["pid"] == pid
            assert hasattr(seen["children"], "start_soon")
            assert seen["helper"] == "hi"
            tg.cancel_scope.cancel()

    async def test_spawn_child_actor_returns_a_handle_and_calls_on_exit(self) -> None:
        exits: list[Any] = []
        exited = anyio.Event()
        handles: list[ActorHandle] = []

        class Child(Actor):
            async def init(self, name: str) -> str:
                return name

            async def run(self, state: Any) -> Any:
                return await self.receive(("quit", lambda: self.stop("bye")))

        class Parent(Actor):
            async def init(self) -> None:
                def on_exit(pid: PID, reason: Any) -> None:
                    exits.append((pid, reason))
                    exited.set()

                handles.append(await self.spawn_child_actor(Child, "kid", on_exit=on_exit))

            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            await Parent.start(task_group=tg)
            [handle] = handles
            assert isinstance(handle, ActorHandle)
            assert is_alive(handle.pid)
            await send(handle.pid, "quit")
            with anyio.fail_after(2):
                await exited.wait()
            assert exits == [(handle.pid, "bye")]
            tg.cancel_scope.cancel()

    async def test_child_actors_are_stopped_when_the_parent_exits(self) -> None:
        handles: list[ActorHandle] = []

        class Child(Actor):
            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

        class Parent(Actor):
            async def init(self) -> None:
                handles.append(await self.spawn_child_actor(Child))

            async def run(self, state: Any) -> Any:
                return await self.receive(("stop", lambda: self.stop()))

        async with anyio.create_task_group() as tg:
            parent = await Parent.start(task_group=tg)
            [handle] = handles
            await send(parent, "stop")
            with anyio.fail_after(2):
                assert await handle.wait() == "shutdown"
            assert not is_alive(parent)
            tg.cancel_scope.cancel()


class TestSeedTask:
    async def test_spawn_and_join_returns_the_value(self) -> None:
        async def work() -> int:
            return 42

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            assert isinstance(handle, TaskHandle)
            assert await handle.join() == 42
            tg.cancel_scope.cancel()

    async def test_join_raises_the_tasks_error(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(100, logger="anyotp")

        def work() -> None:
            raise ZeroDivisionError("oops")

        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(work, tg)
            with pytest.raises(ZeroDivisionError, match="oops"):
                await handle.join()
            tg.cancel_scope.cancel()

    async def test_join_of_a_stopped_task_raises_exiterror(self) -> None:
        async with anyio.create_task_group() as tg:
            handle = await Task.spawn(anyio.sleep_forever, tg)
            tg.cancel_scope.cancel()
        with pytest.raises(ExitError):
            await handle.join()

    @pytest.mark.parametrize(
        ("names", "ok", "fail"),
        [
            pytest.param((), "$$success", "$$failure", id="default-names"),
            pytest.param(("done", "failed"), "done", "failed", id="custom-names"),
        ],
    )
    async def test_spawn_and_notify_sends_name_pid_value_to_the_parent(
        self, names: tuple[str, ...], ok: str, fail: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(100, logger="anyotp")
        inbox: list[Any] = []
        error = RuntimeError("no")

        class Parent(Actor):
            async def run(self, state: Any) -> Any:
                inbox.append(await self.receive(((ANY, PID, ANY), lambda *m: m)))
                return state

        def bad() -> None:
            raise error

        async with anyio.create_task_group() as tg:
            parent = await Parent.start(task_group=tg)
            good_task = await Task.spawn_and_notify(lambda: "v", tg, parent, *names)
            await wait_until(lambda: inbox, timeout=2, what="the notification")
            bad_task = await Task.spawn_and_notify(bad, tg, parent, *names)
            await wait_until(lambda: len(inbox) >= 2, timeout=2, what="both notifications")
            assert inbox == [(ok, good_task.pid, "v"), (fail, bad_task.pid, error)]
            tg.cancel_scope.cancel()

    async def test_spawn_and_notify_takes_keyword_message_names(self) -> None:
        inbox: list[Any] = []

        class Parent(Actor):
            async def run(self, state: Any) -> Any:
                inbox.append(await self.receive((ANY, lambda m: m)))
                return state

        async with anyio.create_task_group() as tg:
            parent = await Parent.start(task_group=tg)
            task = await Task.spawn_and_notify(
                lambda: 1,
                task_group=tg,
                parent_pid=parent,
                success_message_name="yay",
                failure_message_name="nay",
            )
            await wait_until(lambda: inbox, timeout=2, what="the notification")
            assert inbox == [("yay", task.pid, 1)]
            tg.cancel_scope.cancel()


# ================================================ seed 004: PID, messaging, patterns


class TestSeedMessaging:
    async def test_pid_and_ref_are_opaque_handles(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)
            assert isinstance(pid, PID)
            assert hash(pid) == hash(pid)
            with pytest.raises(TypeError):
                PID()
            ref = make_ref()
            assert isinstance(ref, Ref)
            assert ref == ref
            assert ref != make_ref()
            tg.cancel_scope.cancel()

    async def test_send_cast_and_call_with_the_default_timeout(self) -> None:
        class Box(GenServer):
            async def init(self):
                return []

            async def handle_call(self, request, _from, state):
                return state, state

            async def handle_cast(self, request, state):
                return [*state, ("cast", request)]

            async def handle_info(self, msg, state):
                return [*state, ("info", msg)]

        async with anyio.create_task_group() as tg:
            pid = await Box.start(task_group=tg)
            await send(pid, "hello")
            await cast(pid, "world")
            assert await call(pid, "get") == [("info", "hello"), ("cast", "world")]
            assert await call(pid, "get", timeout=5.0) == [("info", "hello"), ("cast", "world")]
            tg.cancel_scope.cancel()


class TestSeedPatterns:
    @pytest.mark.parametrize(
        ("pattern", "message", "extracted"),
        [
            pytest.param(("data", ANY), ("data", 42), (42,), id="tag-and-payload"),
            pytest.param(
                ("event", IGNORE, ANY),
                ("event", "user_login", "127.0.0.1"),
                ("127.0.0.1",),
                id="ignore-part",
            ),
            pytest.param(dict, {"key": "value"}, ({"key": "value"},), id="by-type"),
            pytest.param(("msg", ("sub", int)), ("msg", ("sub", 1)), (1,), id="nested"),
            pytest.param("ping", "ping", (), id="literal"),
            pytest.param(123, 123, (), id="literal-int"),
            pytest.param(ANY, "x", ("x",), id="any"),
            pytest.param(_, "x", (), id="underscore"),
        ],
    )
    async def test_seed_pattern_examples_extract_what_the_seed_says(
        self, pattern: Any, message: Any, extracted: tuple[Any, ...]
    ) -> None:
        assert match(pattern, message) == extracted
        got: list[Any] = []

        class Receiver(Actor):
            async def run(self, state: Any) -> Any:
                got.append(await self.receive((pattern, lambda *xs: xs)))
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            pid = await Receiver.start(task_group=tg)
            if match(pattern, ("unrelated",)) is None:
                await send(pid, ("unrelated",))  # skipped over, left in the mailbox
            await send(pid, message)
            await wait_until(lambda: got, timeout=2, what="a message")
            assert got == [extracted]
            tg.cancel_scope.cancel()

    def test_non_matching_messages_do_not_match(self) -> None:
        assert match(("data", ANY), ("other", 42)) is None
        assert match(("data", ANY), ("data", 1, 2)) is None
        assert match(dict, ["key"]) is None
        assert match(("msg", ("sub", int)), ("msg", ("sub", "1"))) is None
        assert match("ping", "pong") is None


class TestSeedRegistry:
    async def test_register_whereis_registered_and_unregister(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)
            assert register("stack", pid) is True
            assert whereis("stack") == pid
            assert "stack" in registered()
            assert await call("stack", "pop") is None
            assert register("stack", pid) is False  # taken (by itself: Erlang's register/2)
            other = await Stack.start(task_group=tg)
            assert register("stack", other) is False  # taken
            assert unregister("stack") is True
            assert unregister("stack") is False
            assert whereis("stack") is None
            assert registered() == []
            tg.cancel_scope.cancel()

    async def test_a_name_is_released_when_its_process_exits(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)
            register("gone", pid)
            tg.cancel_scope.cancel()
        assert whereis("gone") is None
        assert registered() == []
