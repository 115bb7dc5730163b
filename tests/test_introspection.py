"""Introspection: get_state, replace_state, process_info, supervision trees."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    ANY,
    Actor,
    CallExit,
    ChildSpec,
    From,
    GenServer,
    NoProcess,
    Supervisor,
    call,
    cast,
    format_tree,
    get_state,
    link,
    monitor,
    process_info,
    processes,
    register,
    replace_state,
    supervision_tree,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Counter(GenServer):
    async def init(self, n: int = 0) -> Any:
        return n

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "block":
            await anyio.sleep_forever()
        return state, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        return state + request

    def format_status(self, state: Any) -> Any:
        return {"count": state}


class TestGetAndReplaceState:
    async def test_get_state_sees_every_message_queued_before_it(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            for _ in range(100):
                await cast(pid, 1)
            assert await get_state(pid) == 100
            tg.cancel_scope.cancel()

    async def test_replace_state_applies_the_function_between_messages(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(5, task_group=tg)
            assert await replace_state(pid, lambda s: s * 2) == 10
            assert await call(pid, "get") == 10
            tg.cancel_scope.cancel()

    async def test_a_raising_replace_function_leaves_the_state_and_raises_here(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(5, task_group=tg)
            with pytest.raises(ZeroDivisionError):
                await replace_state(pid, lambda s: s / 0)
            assert await get_state(pid) == 5
            tg.cancel_scope.cancel()

    async def test_get_state_of_a_plain_actor_is_its_last_run_state(self) -> None:
        class Loop(Actor):
            async def init(self) -> Any:
                return "ready"

            async def run(self, state: Any) -> Any:
                return await self.receive((ANY, lambda m: m))

        async with anyio.create_task_group() as tg:
            pid = await Loop.start(task_group=tg)
            assert await get_state(pid) == "ready"
            with pytest.raises(TypeError, match="not a GenServer"):
                await replace_state(pid, lambda s: s)
            tg.cancel_scope.cancel()

    async def test_get_state_of_a_dead_process_raises_no_process(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            tg.cancel_scope.cancel()
        with pytest.raises(NoProcess, match="not alive"):
            await get_state(pid)

    async def test_get_state_of_a_server_that_dies_meanwhile_raises_call_exit(self) -> None:
        class Crashy(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                raise RuntimeError("gone")

        async with anyio.create_task_group() as tg:
            pid = await Crashy.start(task_group=tg)
            await cast(pid, "boom")
            with pytest.raises((CallExit, NoProcess)):
                await get_state(pid)


class Watcher(Actor):
    async def init(self, target: Any) -> Any:
        link(target)
        monitor(target)
        register("watcher", self.pid)
        return None

    async def run(self, state: Any) -> Any:
        return await self.receive(("never", lambda: state))


class TestProcessInfo:
    async def test_process_info_reports_links_monitors_name_mailbox_and_callback(self) -> None:
        async with anyio.create_task_group() as tg:
            server = await Counter.start(7, task_group=tg)
            watcher = await Watcher.start(server, task_group=tg)

            async def blocked_call() -> None:
                await call(server, "block", timeout=None)

            tg.start_soon(blocked_call)
            await wait_until(
                lambda: (process_info(server) or {}).get("current_callback") == "handle_call",
                timeout=2,
                what="the server inside handle_call",
            )
            await cast(server, 1)
            info = process_info(server)
            assert info is not None
            assert info["class"] == "Counter"
            assert info["status"] == "running"
            assert info["links"] == [watcher]
            assert info["monitored_by"] >= 2  # the watcher's monitor and the blocked call's
            assert info["message_queue_len"] == 1
            assert info["state"] == {"count": 7}  # through format_status
            winfo = process_info("watcher")
            assert winfo is not None
            assert winfo["registered_name"] == "watcher"
            assert len(winfo["monitors"]) == 1
            assert winfo["current_callback"] == "receive"
            tg.cancel_scope.cancel()
        assert process_info(server) is None
        assert processes() == []


class Leaf(GenServer):
    pass


class Inner(Supervisor):
    def child_specs(self) -> list[ChildSpec]:
        return [ChildSpec(id="w1", actor_class=Leaf), ChildSpec(id="w2", actor_class=Leaf)]


class Root(Supervisor):
    def child_specs(self) -> list[ChildSpec]:
        return [ChildSpec(id="cache", actor_class=Leaf), ChildSpec(id="inner", actor_class=Inner)]


class TestSupervisionTree:
    async def test_tree_lists_supervisors_and_children_recursively(self) -> None:
        async with anyio.create_task_group() as tg:
            root = await Root.start(task_group=tg)
            tree = await supervision_tree(root)
            assert tree.pid == root
            assert [c.id for c in tree.children] == ["cache", "inner"]
            assert [c.id for c in tree.children[1].children] == ["w1", "w2"]
            text = await format_tree(root)
            lines = text.splitlines()
            assert lines[0].endswith("Root")
            assert lines[1].startswith("├── cache <PID")
            assert lines[2].startswith("└── inner <PID")
            assert lines[3].startswith("    ├── w1 <PID")
            assert lines[4].startswith("    └── w2 <PID")
            tg.cancel_scope.cancel()
