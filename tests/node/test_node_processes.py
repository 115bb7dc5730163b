"""The core API on PIDs of other nodes: send, call, links, monitors, exits, global
via-names, remote spawn; ordering; every failure reason (noproc, noconnection)."""

from __future__ import annotations

import queue
import signal
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from nodehelp import COOKIE, Echo, PeerNode

import anyotp
import anyotp.node
from anyotp import CallExit, CallNoProc
from anyotp.node import MessageTooLarge, NatsServer
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Collector(anyotp.GenServer):
    """Traps exits; forwards every info message to a queue."""

    trap_exit = True

    async def init(self, out: queue.Queue[Any]) -> Any:
        return out

    async def handle_call(self, request: Any, from_: anyotp.From, state: Any) -> Any:
        match request:
            case ("link", pid):
                anyotp.link(pid)
                return (None, state)
            case ("monitor", pid):
                return (anyotp.monitor(pid), state)
            case ("unlink", pid):
                anyotp.unlink(pid)
                return (None, state)
            case ("demonitor", ref):
                return (anyotp.demonitor(ref), state)
            case ("call", pid, req, timeout):
                try:
                    return (("ok", await anyotp.call(pid, req, timeout)), state)
                except Exception as e:
                    return (("raised", e), state)
        return (None, state)

    async def handle_info(self, message: Any, state: Any) -> Any:
        state.put(message)
        return state


async def next_message(inbox: queue.Queue[Any], timeout: float = 5.0) -> Any:
    try:
        return await anyio.to_thread.run_sync(inbox.get, True, timeout)
    except queue.Empty:
        raise AssertionError(f"no message in {timeout} s") from None


async def remote(p: PeerNode, name: str) -> anyotp.PID:
    assert await p.ask(f"register {name}", "registered") == f"registered {name} True"
    pid: anyotp.PID = await wait_until(
        lambda: anyotp.node.whereis_name(name), what=f"{name} is seen"
    )
    return pid


class TestMessagesAndCalls:
    async def test_send_call_and_global_via_names_cross_nodes(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "p1")
            await p.expect("ready")
            pid = await remote(p, "svc")
            assert not pid.is_local
            assert anyotp.node.is_alive(pid)
            assert await anyotp.call(pid, "hi") == ("echo", "hi")
            assert await anyotp.call(("global", "svc"), [1, 2]) == ("echo", [1, 2])
            await anyotp.send(pid, {"a": 1})
            assert await p.expect("got") == "got {'a': 1}"
            await anyotp.send(("global", "svc"), "via")
            assert await p.expect("got") == "got 'via'"

    async def test_ordering_and_no_message_after_the_down_or_exit_that_reports_the_death(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        n = 2000
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                me = await Collector.start(inbox, task_group=tg)
                assert await anyio.to_thread.run_sync(anyotp.node.register_name, "collector", me)
                p = peers(nats_server.url, "p2")
                await p.expect("ready")
                assert await p.ask(f"sender {n}", "registered") == "registered sender True"
                sender = await wait_until(lambda: anyotp.node.whereis_name("sender"))
                ref = await anyotp.call(me, ("monitor", sender))
                await anyotp.call(me, ("link", sender))
                await anyotp.cast(sender, "go")
                for i in range(n):
                    assert await next_message(inbox) == ("seq", i)
                # the DOWN and the EXIT that report its death come after every message
                assert {await next_message(inbox), await next_message(inbox)} == {
                    ("DOWN", ref, "process", sender, ("finished", n)),
                    ("EXIT", sender, ("finished", n)),
                }
                tg.cancel_scope.cancel()

    async def test_call_to_a_dead_remote_process_raises_noproc_at_once(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "p3")
            await p.expect("ready")
            pid = await remote(p, "gone")
            await p.ask("stop gone", "stopped")
            with anyio.fail_after(2), pytest.raises(CallNoProc):
                await anyotp.call(pid, "hi")

    async def test_call_fails_with_noconnection_when_the_node_is_lost(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "p4")
            await p.expect("ready")
            pid = await remote(p, "hang")
            async with anyio.create_task_group() as tg:

                async def kill_soon() -> None:
                    await anyio.sleep(0.2)  # let the call get there first
                    p.signal(signal.SIGKILL)

                tg.start_soon(kill_soon)
                with anyio.fail_after(3), pytest.raises(CallExit) as info:
                    await anyotp.call(pid, "hang", timeout=None)
                assert info.value.reason == "noconnection"

    async def test_a_reply_ends_the_calls_monitor_on_both_nodes(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        from anyotp._core import get_transport
        from anyotp._core._routing import _remote_watches

        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "p6")
            name = (await p.expect("ready")).split()[1]
            hang = await remote(p, "hanger")
            echo = await anyotp.node.spawn(name, "nodehelp:Echo", "t")
            books = await anyotp.node.spawn(name, "nodehelp:Books")
            out = get_transport()._books[name].monitors_out  # type: ignore[union-attr]
            for i in range(5):
                assert await anyotp.call(echo, i) == ("t", i, name)
            # replied: no monitor left here, and none there (no demonitor was sent)
            assert out == {}
            assert _remote_watches == {}
            assert await anyotp.call(books, "held") == 0
            # not replied (a timeout): the demonitor goes to the server's node
            with pytest.raises(anyotp.CallTimeout):
                await anyotp.call(hang, "hang", timeout=0.2)
            assert out == {}
            assert _remote_watches == {}
            assert await anyotp.call(books, "held") == 0

    async def test_remote_spawn_imports_the_class_by_its_qualified_name(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "p5")
            name = (await p.expect("ready")).split()[1]
            await wait_until(lambda: anyotp.node.this_node().peer(name) is not None)
            pid = await anyotp.node.spawn(name, "nodehelp:Echo", "tag")
            assert anyotp.node.node(pid) == name
            assert await anyotp.call(pid, "x") == ("tag", "x", name)
            with pytest.raises(anyotp.StartError, match="nodehelp:Nope"):
                await anyotp.node.spawn(name, "nodehelp:Nope")
            with pytest.raises(anyotp.NoProcess, match="not up"):
                await anyotp.node.spawn("ghost@nowhere", "nodehelp:Echo", "t")


class TestLinksAndMonitors:
    async def test_links_monitors_and_exits_across_nodes(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                me = await Collector.start(inbox, task_group=tg)
                p = peers(nats_server.url, "p6")
                await p.expect("ready")
                a = await remote(p, "a")
                b = await remote(p, "b")
                await anyotp.call(me, ("link", a))
                ref = await anyotp.call(me, ("monitor", b))
                # a call to each goes after the link / monitor (per-pair order): once
                # answered, both are in place there before the peer kills them
                await anyotp.call(me, ("call", a, "sync", 5.0))
                await anyotp.call(me, ("call", b, "sync", 5.0))
                await p.ask("stop a", "stopped")  # killed there
                assert await next_message(inbox) == ("EXIT", a, "killed")
                anyotp.exit_process(b, "kill")
                assert await next_message(inbox) == ("DOWN", ref, "process", b, "killed")
                ref = await anyotp.call(me, ("monitor", b))  # dead now: noproc at once
                assert await next_message(inbox) == ("DOWN", ref, "process", b, "noproc")
                c = await remote(p, "c")
                d = await remote(p, "d")
                await anyotp.call(me, ("link", c))
                ref = await anyotp.call(me, ("monitor", d))
                p.signal(signal.SIGKILL)
                got = {await next_message(inbox), await next_message(inbox)}
                assert got == {
                    ("EXIT", c, "noconnection"),
                    ("DOWN", ref, "process", d, "noconnection"),
                }
                tg.cancel_scope.cancel()

    async def test_unlink_and_demonitor_across_nodes_silence_the_death(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                me = await Collector.start(inbox, task_group=tg)
                p = peers(nats_server.url, "p7")
                await p.expect("ready")
                a = await remote(p, "ua")
                other = await remote(p, "uo")
                await anyotp.call(me, ("link", a))
                ref = await anyotp.call(me, ("monitor", a))
                await anyotp.call(me, ("unlink", a))
                await anyotp.call(me, ("demonitor", ref))
                await anyotp.call(me, ("call", a, "sync", 5.0))  # after them, in order
                await p.ask("stop ua", "stopped")
                # anything the peer node sends after the death comes after any EXIT or
                # DOWN it would have sent (one connection, one order)
                assert await anyotp.call(me, ("call", other, "x", 5.0)) == ("ok", ("echo", "x"))
                assert inbox.empty(), inbox.get()
                tg.cancel_scope.cancel()

    async def test_a_pid_of_a_previous_incarnation_is_dead(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            inbox: queue.Queue[Any] = queue.Queue()
            async with anyio.create_task_group() as tg:
                me = await Collector.start(inbox, task_group=tg)
                p = peers(nats_server.url, "again")
                name = (await p.expect("ready")).split()[1]
                old = await remote(p, "old")
                p.signal(signal.SIGKILL)
                await wait_until(lambda: name not in anyotp.node.nodes(), what="down")
                p2 = peers(nats_server.url, "again")
                await p2.expect("ready")
                await wait_until(lambda: name in anyotp.node.nodes(), what="up again")
                assert not anyotp.node.is_alive(old)
                ref = await anyotp.call(me, ("monitor", old))
                assert await next_message(inbox) == ("DOWN", ref, "process", old, "noproc")
                kind, exc = await anyotp.call(me, ("call", old, "hi", 2.0))
                assert kind == "raised"
                assert isinstance(exc, CallNoProc)
                tg.cancel_scope.cancel()


class TestLimits:
    async def test_an_oversized_message_fails_at_the_sender_and_the_node_goes_on(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE) as me:
            p = peers(nats_server.url, "big")
            await p.expect("ready")
            pid = await remote(p, "sink")
            with pytest.raises(MessageTooLarge, match=f"max_payload of {me.max_payload} bytes"):
                await anyotp.send(pid, b"x" * (me.max_payload + 1))
            await anyotp.send(pid, "small")
            assert await p.expect("got") == "got 'small'"


class TestSupervision:
    async def test_a_supervisor_restarts_a_child_on_another_node_and_stops_it(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "host")
            name = (await p.expect("ready")).split()[1]
            await wait_until(lambda: anyotp.node.this_node().peer(name) is not None)
            inbox: queue.Queue[Any] = queue.Queue()
            spec = anyotp.ChildSpec(
                "echo", anyotp.node.RemoteChild, args=(name, "nodehelp:Echo", "sup")
            )
            async with anyio.create_task_group() as tg:
                me = await Collector.start(inbox, task_group=tg)
                sup = await anyotp.Supervisor.start([spec], task_group=tg)
                [child] = await anyotp.Supervisor.which_children(sup)
                assert child.pid is not None
                first = await anyotp.call(child.pid, "remote")
                assert anyotp.node.node(first) == name
                assert await anyotp.call(first, "x") == ("sup", "x", name)
                anyotp.exit_process(first, "kill")  # the remote child dies: restarted

                async def restarted() -> Any:
                    [c] = await anyotp.Supervisor.which_children(sup)
                    if c.pid is None or c.pid == child.pid:
                        return None
                    return await anyotp.call(c.pid, "remote")

                second = await wait_until(restarted, what="a new remote child")
                assert second != first
                assert await anyotp.call(second, "y") == ("sup", "y", name)
                ref = await anyotp.call(me, ("monitor", second))
                await anyotp.Supervisor.terminate_child(sup, "echo")
                assert await next_message(inbox) == ("DOWN", ref, "process", second, "shutdown")
                tg.cancel_scope.cancel()

    async def test_start_child_with_a_node_supervises_the_child_there(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE):
            p = peers(nats_server.url, "host")
            name = (await p.expect("ready")).split()[1]
            await wait_until(lambda: anyotp.node.this_node().peer(name) is not None)
            spec = anyotp.node.child_spec(
                name, anyotp.ChildSpec("echo", Echo, args=("there",), shutdown=2.0)
            )
            assert spec.id == "echo"
            assert spec.actor_class is anyotp.node.RemoteChild
            assert spec.args == (name, Echo, "there")
            assert spec.shutdown == 2.0
            async with anyio.create_task_group() as tg:
                sup = await anyotp.Supervisor.start([], task_group=tg)
                stand_in = await anyotp.Supervisor.start_child(sup, spec)
                first = await anyotp.call(stand_in, "remote")
                assert anyotp.node.node(first) == name
                assert await anyotp.call(first, "x") == ("there", "x", name)
                anyotp.exit_process(first, "kill")  # the remote child dies: restarted

                async def restarted() -> Any:
                    [c] = await anyotp.Supervisor.which_children(sup)
                    if c.pid is None or c.pid == stand_in:
                        return None
                    return await anyotp.call(c.pid, "remote")

                second = await wait_until(restarted, what="a new remote child")
                assert anyotp.node.node(second) == name
                assert second != first
                await anyotp.Supervisor.terminate_child(sup, "echo")
                with pytest.raises(CallNoProc):
                    await anyotp.call(second, "y")
                tg.cancel_scope.cancel()

    async def test_child_spec_refuses_a_local_name(self) -> None:
        with pytest.raises(anyotp.SupervisorError, match="no local name"):
            anyotp.node.child_spec("n@h", anyotp.ChildSpec("echo", Echo, name="echo"))
        with pytest.raises(TypeError):
            anyotp.node.child_spec("n@h", "echo")  # type: ignore[arg-type]
