"""multi_call and abcast (gen_server:multi_call/abcast) on the local node."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import From, GenServer, NoReply, abcast, call, multi_call
from anyotp._core import local_node

pytestmark = pytest.mark.anyio


class Counter(GenServer):
    async def init(self) -> Any:
        return 0

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "hang":
            return NoReply(state)  # never answers
        return ("count", state), state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        return state + request


class TestMultiCall:
    async def test_multi_call_gathers_the_reply_of_this_node(self) -> None:
        here = local_node()[0]
        async with anyio.create_task_group() as tg:
            await Counter.start(task_group=tg, name="counter")
            assert await multi_call("counter", "get") == ([(here, ("count", 0))], [])
            tg.cancel_scope.cancel()

    async def test_a_name_not_registered_here_makes_this_node_bad(self) -> None:
        here = local_node()[0]
        assert await multi_call("nobody", "get") == ([], [here])

    async def test_a_server_that_does_not_reply_in_time_makes_its_node_bad(self) -> None:
        here = local_node()[0]
        async with anyio.create_task_group() as tg:
            await Counter.start(task_group=tg, name="counter")
            assert await multi_call("counter", "hang", timeout=0.05) == ([], [here])
            tg.cancel_scope.cancel()

    async def test_nodes_not_reachable_yet_are_bad_nodes_in_order(self) -> None:
        here = local_node()[0]
        async with anyio.create_task_group() as tg:
            await Counter.start(task_group=tg, name="counter")
            replies, bad = await multi_call("counter", "get", nodes=["b@x", here, "c@y"])
            assert replies == [(here, ("count", 0))]
            assert bad == ["b@x", "c@y"]
            tg.cancel_scope.cancel()

    async def test_multi_call_takes_a_registered_name_only(self) -> None:
        with pytest.raises(TypeError, match=r"multi_call\(\) takes a locally registered name"):
            await multi_call(("via", None, "x"), "get")  # type: ignore[arg-type]


class TestAbcast:
    async def test_abcast_casts_to_the_server_registered_here(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg, name="counter")
            assert await abcast("counter", 5) is None
            await abcast("counter", 2, nodes=[local_node()[0], "elsewhere@x"])
            assert await call(pid, "get") == ("count", 7)
            tg.cancel_scope.cancel()

    async def test_abcast_to_a_name_nobody_registered_is_dropped(self) -> None:
        await abcast("nobody", 1)
