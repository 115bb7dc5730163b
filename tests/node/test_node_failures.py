"""Losing NATS: a node whose server dies treats every node as down and rejoins as a
new incarnation; in a 2-server cluster, a node whose server (machine) is lost is
found down by heartbeats, since no advisory can come."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from nodehelp import COOKIE, HEARTBEAT, PeerNode

import anyotp
import anyotp.node
from anyotp.node import NatsServer
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Collector(anyotp.GenServer):
    async def init(self, out: queue.Queue[Any]) -> Any:
        return out

    async def handle_info(self, message: Any, state: Any) -> Any:
        state.put(message)
        return state


async def next_message(inbox: queue.Queue[Any], timeout: float) -> Any:
    try:
        return await anyio.to_thread.run_sync(inbox.get, True, timeout)
    except queue.Empty:
        raise AssertionError(f"no message in {timeout} s") from None


async def test_a_node_that_loses_its_server_sees_every_node_down_and_rejoins_anew(
    peers: Callable[..., PeerNode],
) -> None:
    server = NatsServer.start()
    port = server.port
    try:
        async with anyotp.node.start(
            "tester", url=server.url, cookie=COOKIE, heartbeat_timeout=HEARTBEAT
        ) as me:
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                watcher = await Collector.start(inbox, task_group=tg)
                me.monitor_nodes(watcher)
                p = peers(server.url, "p1")
                name = (await p.expect("ready")).split()[1]
                assert await next_message(inbox, 5) == ("nodeup", name)
                creation = me.creation
                server.kill()
                assert await next_message(inbox, 5) == ("nodedown", name)
                assert anyotp.node.nodes() == []
                server.stop()
                server = NatsServer.start(port=port)
                assert await next_message(inbox, 15) == ("nodeup", name)
                assert me.creation != creation
                assert me.incarnations == 2
                tg.cancel_scope.cancel()
    finally:
        server.stop()


@pytest.fixture
def cluster() -> Any:
    a = NatsServer.start(cluster="t")
    assert a.cluster_url is not None
    b = NatsServer.start(cluster="t", routes=[a.cluster_url])
    yield a, b
    b.stop()
    a.stop()


async def test_a_node_lost_with_its_server_in_a_cluster_is_down_after_the_heartbeat_timeout(
    cluster: tuple[NatsServer, NatsServer], peers: Callable[..., PeerNode]
) -> None:
    a, b = cluster
    async with anyotp.node.start(
        "tester", url=a.url, cookie=COOKIE, heartbeat_timeout=HEARTBEAT
    ) as me:
        inbox: queue.Queue[Any] = queue.Queue()
        async with anyio.create_task_group() as tg:
            watcher = await Collector.start(inbox, task_group=tg)
            me.monitor_nodes(watcher)
            p = peers(b.url, "far")
            name = (await p.expect("ready")).split()[1]
            # routes may take a moment: the peer's hello or heartbeat crosses them
            assert await next_message(inbox, HEARTBEAT + 5) == ("nodeup", name)
            # calls and ordered messages cross the route between the two servers (no
            # JetStream in this cluster, so no global names: a group finds the process)
            await p.ask("join far", "joined")
            [pid] = await wait_until(lambda: anyotp.node.members("far"), what="far seen")
            assert await anyotp.call(pid, "over") == ("echo", "over")
            for i in range(100):
                await anyotp.send(pid, i)
            for i in range(100):
                assert await p.expect("got") == f"got {i}"
            started = time.monotonic()
            b.kill()
            p.signal(signal.SIGKILL)  # the machine is gone: node and server together
            assert await next_message(inbox, HEARTBEAT + 3) == ("nodedown", name)
            assert time.monotonic() - started < HEARTBEAT + 1.5
            tg.cancel_scope.cancel()
