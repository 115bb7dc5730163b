"""PIDs: equality across pickling, and PIDs of another incarnation of this node.

Mirrors ``anyotp/_core/_ids.py``.
"""

from __future__ import annotations

import pickle
from typing import Any

import anyio
import pytest

from anyotp import PID, CallNoProc, From, GenServer, call, is_alive, monitor, send
from anyotp._core import local_node, pid_from_wire

pytestmark = pytest.mark.anyio


class Watcher(GenServer):
    """Monitors what it is asked to; keeps every message it gets."""

    async def init(self) -> list[Any]:
        return []

    async def handle_call(self, request: Any, from_: From, state: list[Any]) -> Any:
        if request[0] == "monitor":
            return monitor(request[1]), state
        return state, state

    async def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
        return [*state, message]


def of_another_incarnation(pid: PID) -> PID:
    """The same name and number, on a node with this node's name but another creation."""
    name, creation = local_node()
    return pid_from_wire(name, (creation + 1) % 2**32, pid.id)


class TestPickling:
    async def test_a_pickled_pid_is_equal_and_routes_to_the_live_process(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Watcher.start(task_group=tg)
            copy = pickle.loads(pickle.dumps(pid))
            assert copy == pid
            assert hash(copy) == hash(pid)
            assert is_alive(copy)
            await send(copy, "hello")
            assert await call(copy, ("log",)) == ["hello"]
            tg.cancel_scope.cancel()


class TestOtherIncarnation:
    async def test_a_pid_of_another_creation_is_not_the_local_process(self) -> None:
        async with anyio.create_task_group() as tg:
            live = await Watcher.start(task_group=tg)
            other = of_another_incarnation(live)
            assert other != live
            assert other.creation != live.creation
            assert not is_alive(other)
            tg.cancel_scope.cancel()

    async def test_send_to_a_pid_of_another_creation_is_dropped(self) -> None:
        async with anyio.create_task_group() as tg:
            live = await Watcher.start(task_group=tg)
            await send(of_another_incarnation(live), "lost")
            assert await call(live, ("log",)) == []
            tg.cancel_scope.cancel()

    async def test_call_to_a_pid_of_another_creation_raises_callnoproc(self) -> None:
        async with anyio.create_task_group() as tg:
            live = await Watcher.start(task_group=tg)
            with pytest.raises(CallNoProc, match="not alive"):
                await call(of_another_incarnation(live), ("log",))
            tg.cancel_scope.cancel()

    async def test_monitoring_a_pid_of_another_creation_delivers_down_noproc(self) -> None:
        async with anyio.create_task_group() as tg:
            watcher = await Watcher.start(task_group=tg)
            other = of_another_incarnation(watcher)
            ref = await call(watcher, ("monitor", other))
            assert await call(watcher, ("log",)) == [("DOWN", ref, "process", other, "noproc")]
            tg.cancel_scope.cancel()
