"""Nodes in real OS processes over a real nats-server: membership, node monitors,
failure detection (SIGKILL, SIGSTOP, a lost server), global names and groups."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Callable
from typing import Any, ClassVar

import anyio
import pytest
from nodehelp import COOKIE, HEARTBEAT, PeerNode

import anyotp
import anyotp.node
from anyotp.node import NatsServer
from anyotp.testing import wait_until


class Collector(anyotp.GenServer):
    """Forwards every info message to a memory stream."""

    async def init(self, out: queue.Queue[Any]) -> Any:
        return out

    async def handle_call(self, request: Any, from_: anyotp.From, state: Any) -> Any:
        match request:
            case ("monitor_node", name):
                anyotp.node.monitor_node(name)
            case "monitor_nodes":
                anyotp.node.monitor_nodes()
        return (None, state)

    async def handle_info(self, message: Any, state: Any) -> Any:
        state.put(message)
        return state


async def next_message(inbox: queue.Queue[Any], timeout: float) -> Any:
    try:
        return await anyio.to_thread.run_sync(inbox.get, True, timeout)
    except queue.Empty:
        raise AssertionError(f"no message in {timeout} s") from None


@pytest.mark.anyio
class TestMembership:
    async def test_nodes_see_each_other_and_a_clean_leave_is_seen_at_once(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start(
            "tester", url=nats_server.url, cookie=COOKIE, heartbeat_timeout=HEARTBEAT
        ) as me:
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                watcher = await Collector.start(inbox, task_group=tg)
                await anyotp.call(watcher, "monitor_nodes")
                p = peers(nats_server.url, "p1")
                name = (await p.expect("ready")).split()[1]
                assert await next_message(inbox, 5) == ("nodeup", name)
                assert anyotp.node.nodes() == [name]
                assert (await p.ask("nodes", "nodes")) == f"nodes {me.name}"
                started = time.monotonic()
                p.command("quit")
                assert await next_message(inbox, 5) == ("nodedown", name)
                assert time.monotonic() - started < 3.0  # no timeout involved: "bye"
                assert anyotp.node.nodes() == []
                tg.cancel_scope.cancel()

    async def test_a_killed_node_is_reported_down_within_one_second(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start(
            "tester", url=nats_server.url, cookie=COOKIE, heartbeat_timeout=10.0
        ):
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                watcher = await Collector.start(inbox, task_group=tg)
                p = peers(nats_server.url, "victim")
                name = (await p.expect("ready")).split()[1]
                await wait_until(lambda: name in anyotp.node.nodes(), what="victim is up")
                await anyotp.call(watcher, ("monitor_node", name))
                started = time.monotonic()
                p.signal(signal.SIGKILL)
                assert await next_message(inbox, 5) == ("nodedown", name)
                assert time.monotonic() - started < 1.0
                tg.cancel_scope.cancel()

    async def test_a_hung_node_is_down_after_the_heartbeat_timeout_and_rejoins_anew(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start(
            "tester", url=nats_server.url, cookie=COOKIE, heartbeat_timeout=HEARTBEAT
        ) as me:
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                watcher = await Collector.start(inbox, task_group=tg)
                me.monitor_nodes(watcher)
                p = peers(nats_server.url, "sleeper")
                name = (await p.expect("ready")).split()[1]
                assert await next_message(inbox, 5) == ("nodeup", name)
                before = me.peer(name)
                assert before is not None
                started = time.monotonic()
                p.signal(signal.SIGSTOP)
                assert await next_message(inbox, HEARTBEAT + 3) == ("nodedown", name)
                assert time.monotonic() - started < HEARTBEAT + 1.5
                p.signal(signal.SIGCONT)
                # Its next heartbeat is from a dead incarnation: it is told, and rejoins.
                assert await next_message(inbox, HEARTBEAT + 5) == ("nodeup", name)
                after = me.peer(name)
                assert after is not None
                assert after.creation != before.creation
                tg.cancel_scope.cancel()

    async def test_monitor_node_of_an_unknown_node_is_nodedown_at_once(
        self, nats_server: NatsServer
    ) -> None:
        with pytest.raises(RuntimeError, match="not a node"):
            anyotp.node.monitor_nodes()
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE) as me:
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                watcher = await Collector.start(inbox, task_group=tg)
                me.monitor_node("ghost@nowhere", watcher)
                assert await next_message(inbox, 1) == ("nodedown", "ghost@nowhere")
                tg.cancel_scope.cancel()

    async def test_node_names_and_not_distributed_defaults(self, nats_server: NatsServer) -> None:
        assert anyotp.node.node() == "nonode@nohost"
        assert anyotp.node.nodes() == []
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE, host="h"):
            assert anyotp.node.node() == "tester@h"
            with pytest.raises(RuntimeError, match="already node tester@h"):
                async with anyotp.node.start("again", url=nats_server.url, cookie=COOKIE):
                    pass
        assert anyotp.node.node() == "nonode@nohost"

    async def test_a_url_without_a_cookie_is_refused(self, nats_server: NatsServer) -> None:
        with pytest.raises(ValueError, match="no cookie"):
            async with anyotp.node.start("tester", url=nats_server.url):
                pass


@pytest.mark.anyio
class TestGlobalNames:
    async def test_first_registration_wins_and_the_name_goes_with_its_node(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start(
            "tester", url=nats_server.url, cookie=COOKIE, heartbeat_timeout=10.0
        ):
            p = peers(nats_server.url, "holder")
            await p.expect("ready")
            assert await p.ask("register svc", "registered") == "registered svc True"
            remote = await wait_until(lambda: anyotp.node.whereis_name("svc"), what="svc is seen")
            assert "svc" in anyotp.node.registered_names()
            assert anyotp.node.node(remote) != anyotp.node.node()
            async with anyio.create_task_group() as tg:
                inbox: queue.Queue[Any] = queue.Queue()
                mine = await Collector.start(inbox, task_group=tg)
                assert not await anyio.to_thread.run_sync(anyotp.node.register_name, "svc", mine)
                p.signal(signal.SIGKILL)
                await wait_until(
                    lambda: anyotp.node.whereis_name("svc") is None, what="svc released"
                )
                assert await anyio.to_thread.run_sync(anyotp.node.register_name, "svc", mine)
                assert anyotp.node.whereis_name("svc") == mine
                tg.cancel_scope.cancel()
            await wait_until(
                lambda: anyotp.node.whereis_name("svc") is None,
                what="svc released when its process exits",
            )

    async def test_a_name_is_released_when_its_process_exits(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "holder2")
            await p.expect("ready")
            assert await p.ask("register svc2", "registered") == "registered svc2 True"
            await wait_until(lambda: anyotp.node.whereis_name("svc2"), what="svc2 is seen")
            await p.ask("stop svc2", "stopped")
            await wait_until(lambda: anyotp.node.whereis_name("svc2") is None, what="svc2 released")


@pytest.mark.anyio
class TestGroups:
    async def test_members_across_nodes_and_dropped_with_the_node(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with (
            anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE, heartbeat_timeout=10.0),
            anyio.create_task_group() as tg,
        ):
            inbox: queue.Queue[Any] = queue.Queue()
            mine = await Collector.start(inbox, task_group=tg)
            anyotp.node.join("workers", mine)
            p = peers(nats_server.url, "member")
            await p.expect("ready")
            await p.ask("join workers", "joined")
            members = await wait_until(
                lambda: len(anyotp.node.members("workers")) == 2 and anyotp.node.members("workers"),
                what="two members",
            )
            assert members[0] == mine
            assert anyotp.node.local_members("workers") == [mine]
            p.signal(signal.SIGKILL)
            await wait_until(
                lambda: anyotp.node.members("workers") == [mine], what="remote dropped"
            )
            assert anyotp.node.leave("workers", mine)
            assert anyotp.node.members("workers") == []
            tg.cancel_scope.cancel()


class _SeesItsNode(anyotp.Actor):
    """Records the node it runs on, then exits normally."""

    seen: ClassVar[list[str]] = []

    async def run(self, state: Any) -> Any:
        _SeesItsNode.seen.append(anyotp.node.node())
        self.stop("normal")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_with_a_node_joins_for_the_applications_lifetime(
    nats_server: NatsServer, backend: str
) -> None:
    node = anyotp.node.start("app", url=nats_server.url, cookie=COOKIE, host="h")
    assert anyotp.run(_SeesItsNode, node=node, backend=backend) == 0
    assert _SeesItsNode.seen[-1] == "app@h"
    assert anyotp.node.node() == "nonode@nohost"
