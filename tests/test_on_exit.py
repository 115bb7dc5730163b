"""spawn_child_actor(on_exit=cb): the callback also runs when the parent's exit stops
the child."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import PID, Actor, exit_process, is_alive, receive
from anyotp.testing import watch_exit

pytestmark = pytest.mark.anyio


class Child(Actor):
    async def run(self, state: Any) -> Any:
        await receive("never")


class Parent(Actor):
    async def init(self, events: list[Any], started: anyio.Event) -> Any:
        self.events = events

        def sync_cb(pid: PID, reason: Any) -> None:
            events.append(("sync", reason, is_alive(pid)))

        async def async_cb(pid: PID, reason: Any) -> None:
            await anyio.lowlevel.checkpoint()
            events.append(("async", reason, is_alive(pid)))

        await self.spawn_child_actor(Child, on_exit=sync_cb)
        await self.spawn_child_actor(Child, on_exit=async_cb)
        started.set()
        return None

    async def run(self, state: Any) -> Any:
        await receive("never")

    async def terminate(self, reason: Any, state: Any) -> None:
        self.events.append(("terminate", reason))


class TestOnExitDuringParentShutdown:
    async def test_sync_and_async_callbacks_run_after_the_children_died_before_terminate(
        self,
    ) -> None:
        events: list[Any] = []
        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Parent.start(events, started, task_group=tg)
            await started.wait()
            assert await Actor.stop(pid, "shutdown") == "shutdown"
        # newest child first (reverse start order), both dead when told
        assert events == [
            ("async", "shutdown", False),
            ("sync", "shutdown", False),
            ("terminate", "shutdown"),
        ]

    async def test_callbacks_run_when_the_parents_task_group_is_cancelled(self) -> None:
        events: list[Any] = []
        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            await Parent.start(events, started, task_group=tg)
            await started.wait()
            tg.cancel_scope.cancel()
        assert sorted(e[0] for e in events) == ["async", "sync", "terminate"]
        assert events[-1] == ("terminate", "shutdown")

    async def test_a_killed_parent_runs_no_callbacks(self) -> None:
        events: list[Any] = []
        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Parent.start(events, started, task_group=tg)
            await started.wait()
            watch = watch_exit(pid)
            exit_process(pid, "kill")
            assert await watch.reason(timeout=5) == "killed"
        assert events == []

    async def test_a_callback_that_raises_is_logged_and_the_others_still_run(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        events: list[Any] = []

        class Fragile(Actor):
            async def init(self, started: anyio.Event) -> Any:
                def bad(pid: PID, reason: Any) -> None:
                    raise RuntimeError("callback failed")

                def good(pid: PID, reason: Any) -> None:
                    events.append(reason)

                await self.spawn_child_actor(Child, on_exit=good)
                await self.spawn_child_actor(Child, on_exit=bad)
                started.set()
                return None

            async def run(self, state: Any) -> Any:
                await receive("never")

        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Fragile.start(started, task_group=tg)
            await started.wait()
            await Actor.stop(pid)
        assert events == ["shutdown"]
        assert "callback failed" in caplog.text
