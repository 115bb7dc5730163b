"""Plausible mistakes are caught early, with a message naming the mistake and the fix."""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import anyotp
from _helpers import in_process
from anyotp import (
    Actor,
    CallTimeout,
    ChildSpec,
    GenServer,
    NoReply,
    StateMachine,
    Supervisor,
    Task,
    call,
    exit_process,
    is_alive,
    send_nowait,
)
from anyotp._core import check_timeout
from anyotp.sync import GenServer as SyncGenServer
from anyotp.sync import GenServerError
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Echo(GenServer):
    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return request, state


class TestCallbacksCheckedAtClassDefinition:
    def test_a_handle_call_without_async_is_refused_naming_the_fix(self) -> None:
        with pytest.raises(
            TypeError,
            match=r"Bad.handle_call must be a coroutine function: "
            r"write `async def handle_call\(self, request, from_, state\)`",
        ):

            class Bad(GenServer):
                def handle_call(self, request: Any, from_: Any, state: Any) -> Any:  # type: ignore[override]
                    return request, state

    @pytest.mark.parametrize("method", ["handle_cast", "handle_info"])
    def test_a_handle_cast_or_info_without_async_is_refused(self, method: str) -> None:
        def handler(self: Any, message: Any, state: Any) -> Any:
            return state

        with pytest.raises(TypeError, match=rf"Bad.{method} must be a coroutine function"):
            type("Bad", (GenServer,), {method: handler})

    def test_elixirs_two_argument_handle_call_is_refused_naming_the_parameters(self) -> None:
        async def handle_call(self: Any, request: Any, state: Any) -> Any:
            return request, state

        with pytest.raises(
            TypeError,
            match=r"Bad.handle_call\(self, request, state\) takes 2 argument\(s\) after self, "
            r"but the runtime calls it as handle_call\(self, request, from_, state\)",
        ):
            type("Bad", (GenServer,), {"handle_call": handle_call})

    def test_a_from_added_to_handle_cast_is_refused(self) -> None:
        async def handle_cast(self: Any, request: Any, from_: Any, state: Any) -> Any:
            return state

        with pytest.raises(TypeError, match=r"Bad.handle_cast\(self, request, from_, state\)"):
            type("Bad", (GenServer,), {"handle_cast": handle_cast})

    def test_a_handle_event_with_the_wrong_arity_is_refused(self) -> None:
        async def handle_event(self: Any, event_type: Any, content: Any, state: Any) -> Any:
            return None

        with pytest.raises(TypeError, match=r"Bad.handle_event"):
            type("Bad", (StateMachine,), {"handle_event": handle_event})

    def test_an_async_handler_on_a_sync_server_is_refused(self) -> None:
        async def handle_cast(self: Any, message: Any, state: Any) -> Any:
            return state

        with pytest.raises(
            TypeError,
            match=r"Bad.handle_cast must be a plain function.*use "
            r"anyotp.GenServer",
        ):
            type("Bad", (SyncGenServer,), {"handle_cast": handle_cast})

    def test_defaults_and_star_args_are_accepted(self) -> None:
        class Fine(GenServer):
            async def handle_call(self, request: Any, from_: Any, state: Any = None) -> Any:
                return request, state

            async def handle_info(self, *args: Any) -> Any:
                return args[-1]

        assert Fine.handle_call is not None


class TestTimeouts:
    @pytest.mark.parametrize(
        ("timeout", "error", "message"),
        [
            (-1, ValueError, r"timeout must be >= 0 seconds"),
            ("5", TypeError, r"timeout must be a number of seconds or None.*got str '5'"),
            (True, TypeError, r"got bool True"),
            (float("nan"), ValueError, r"timeout must be >= 0"),
        ],
    )
    async def test_a_bad_call_timeout_is_refused_before_anything_is_sent(
        self, timeout: Any, error: type[Exception], message: str
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            with pytest.raises(error, match=message):
                await call(pid, "x", timeout=timeout)
            assert await call(pid, "y", timeout=1) == "y"  # an int is fine
            tg.cancel_scope.cancel()

    async def test_a_timeout_too_large_for_a_float_waits_forever_and_loses_no_other(
        self,
    ) -> None:
        # 10**400 seconds cannot be a float: it means "never", and it must not break
        # the timeout of a call made beside it (on asyncio both wait in the same
        # sweep of the timeout wheel)
        class Mute(GenServer):
            async def init(self) -> Any:
                return None

            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return NoReply(state)  # never answers

        huge = 10**400
        assert check_timeout(huge, "x") == math.inf
        outcome: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            pid = await Mute.start(task_group=tg)

            async def forever() -> None:
                try:
                    await call(pid, "wait", timeout=huge)
                except BaseException as e:
                    outcome.append(e)
                    raise

            tg.start_soon(forever)
            await anyio.lowlevel.checkpoint()  # its call is in the server's mailbox first
            with anyio.fail_after(5), pytest.raises(CallTimeout):
                await call(pid, "short", timeout=0.05)
            assert outcome == []  # the huge one still waits
            tg.cancel_scope.cancel()

    async def test_other_timeouts_too_large_for_a_float_mean_forever_too(self) -> None:
        # The module-level receive (which now checks its timeout like the others), a
        # GenServer's idle timeout, a child's shutdown timeout and Task.await_many:
        # 10**400 seconds waits forever instead of raising OverflowError somewhere.
        huge = 10**400
        terminated: list[Any] = []

        class Waiter(Actor):
            async def run(self, state: Any) -> Any:
                # start() returned once init did: this receive finds the mailbox empty
                terminated.append(await anyotp.receive("go", timeout=huge))
                task = await Task.async_(lambda: "done")
                terminated.extend(await Task.await_many([task], timeout=huge))
                with pytest.raises(ValueError, match=r"Task.await_many\(\): timeout must be >= 0"):
                    await Task.await_many([task], timeout=-1)
                with pytest.raises(TypeError, match=r"receive\(\): timeout must be a number"):
                    await anyotp.receive("go", timeout="1")  # type: ignore[arg-type]
                self.stop()

        class Idle(GenServer):
            async def init(self) -> Any:
                return NoReply("idle", huge)  # an idle timeout that never comes

            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return state, state

            async def terminate(self, reason: Any, state: Any) -> None:
                terminated.append(reason)

        class Sup(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="idle", actor_class=Idle, shutdown=huge)]

        async with anyio.create_task_group() as tg:
            pid = await Waiter.start(task_group=tg)
            send_nowait(pid, "go")
            sup = await Sup.start(task_group=tg)
            (child,) = [c.pid for c in await Supervisor.which_children(sup)]
            assert await call(child, "state", timeout=5) == "idle"
            with anyio.fail_after(5):
                assert await Actor.stop(sup, "shutdown", timeout=5) == "shutdown"
                await wait_until(lambda: not is_alive(pid), what="the waiter to finish")
        assert terminated == ["go", "done", "shutdown"]

    async def test_a_bad_exit_watch_timeout_is_refused_naming_it(self) -> None:
        from decimal import Decimal

        from anyotp.testing import watch_exit

        async with anyio.create_task_group() as tg:
            pid = await Task.start(anyio.sleep_forever, task_group=tg)
            watch = watch_exit(pid)
            with pytest.raises(TypeError, match=r"ExitWatch.reason\(\): timeout must be a number"):
                await watch.reason(Decimal("10"))  # type: ignore[arg-type]
            tg.cancel_scope.cancel()

    async def test_bad_stop_and_shutdown_timeouts_are_refused_before_anything_is_done(
        self,
    ) -> None:
        from anyotp.testing import wait_until as poll

        refused: list[str] = []

        class Parent(Actor):
            async def run(self, state: Any) -> Any:
                with pytest.raises(TypeError, match=r"starting Echo: shutdown must be seconds"):
                    await self.spawn_child_actor(Echo, shutdown="soon")  # type: ignore[arg-type]
                handle = await self.spawn_child_actor(Echo)
                for bad, error in [("5", TypeError), (float("nan"), ValueError), (-1, ValueError)]:
                    with pytest.raises(error, match=r"shutdown must be seconds >= 0"):
                        await handle.stop(timeout=bad)  # type: ignore[arg-type]
                    refused.append(repr(bad))
                assert is_alive(handle.pid)  # none of them stopped it
                assert await handle.stop(timeout=10**400) == "shutdown"  # forever
                self.stop()

        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            for bad, error in [("1", TypeError), (True, TypeError), (-1, ValueError)]:
                with pytest.raises(error, match=r"timeout must be"):
                    await GenServer.stop(pid, timeout=bad)  # type: ignore[arg-type]
            assert is_alive(pid)  # refused before the server was asked to stop
            assert await GenServer.stop(pid, "shutdown", timeout=10**400) == "shutdown"
            parent = await Parent.start(task_group=tg)
            await poll(lambda: not is_alive(parent), what="the parent to finish")
            with pytest.raises(TypeError, match=r"wait_until\(\): timeout must be a number"):
                await poll(lambda: True, timeout="1")  # type: ignore[arg-type]
        assert refused == ["'5'", "nan", "-1"]

    async def test_an_exit_watch_that_timed_out_can_wait_again(self) -> None:
        from anyotp.testing import watch_exit

        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            watch = watch_exit(pid)
            with pytest.raises(TimeoutError, match=r"did not exit within 0.01 s"):
                await watch.reason(0.01)
            exit_process(pid, "bye")
            with anyio.fail_after(5):
                assert await watch.reason(5) == "bye"
            tg.cancel_scope.cancel()

    async def test_a_stream_timeout_is_checked_and_a_huge_one_is_forever(self) -> None:
        async def body() -> list[Any]:
            with pytest.raises(ValueError, match=r"Task.async_stream\(timeout=True\)"):
                Task.async_stream([1], abs, timeout=True)  # type: ignore[arg-type]
            async with Task.async_stream([-1, -2], abs, timeout=10**400) as stream:
                return [value async for value in stream]

        assert await in_process(body) == [("ok", 1), ("ok", 2)]

    async def test_a_bad_receive_timeout_is_refused(self) -> None:
        got: list[BaseException] = []
        done = anyio.Event()

        class Receiver(Actor):
            async def run(self, state: Any) -> Any:
                try:
                    await self.receive(("x", lambda: None), timeout=-0.5)
                except ValueError as e:
                    got.append(e)
                try:
                    await self.receive(("x", lambda: None), timeout=-1)
                except ValueError as e:
                    got.append(e)
                send_nowait(self.pid, "x")
                got.append(await self.receive(("x", lambda: "took x"), timeout=1))
                send_nowait(self.pid, "y")
                got.append(await self.receive(("y", lambda: "took y"), timeout=10**400))
                done.set()
                self.stop()

        async with anyio.create_task_group() as tg:
            await Receiver.start(task_group=tg)
            with anyio.fail_after(5):
                await done.wait()
        assert "receive(): timeout must be >= 0" in str(got[0])
        assert "receive(): timeout must be >= 0" in str(got[1])  # an int one too
        assert got[2] == "took x"  # an int timeout >= 0 is fine
        assert got[3] == "took y"  # one too large for a float too (it never ends)


class TestTasks:
    async def test_task_spawn_of_a_coroutine_object_is_refused_naming_the_fix(self) -> None:
        async def work() -> int:
            return 1

        async with anyio.create_task_group() as tg:
            with pytest.raises(TypeError, match=r"got a coroutine object: pass the function"):
                await Task.spawn(work(), tg)  # type: ignore[arg-type]
            handle = await Task.spawn(work, tg)
            assert await handle.join() == 1


class TestSyncServerOnTheClass:
    def test_start_called_on_the_class_names_that_class_and_the_fix(self) -> None:
        class Counter(SyncGenServer[int]):
            def init(self) -> int:
                return 0

        with pytest.raises(
            GenServerError,
            match=r"Counter.start\(\) was called on the class Counter, not on a server: "
            r"create one and call it there: `server = Counter\(\); server.start",
        ):
            Counter.start()  # type: ignore[call-arg]
        with pytest.raises(GenServerError, match=r"Counter.cast\(\) was called on the class"):
            Counter.cast({})  # type: ignore[call-arg]


class TestRunInsideALoop:
    async def test_run_inside_a_running_loop_names_the_fix(self) -> None:
        import anyotp
        from anyotp import Supervisor

        class App(Supervisor):
            pass

        with pytest.raises(RuntimeError, match=r"anyotp.run\(App\) starts its own event loop.*"):
            anyotp.run(App)
