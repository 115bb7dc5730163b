"""Stopping from outside: GenServer.stop / Agent.stop / Supervisor.stop (gen_server:stop/3),
and the instance form self.stop(reason) from inside."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    PID,
    Actor,
    Agent,
    CallError,
    CallNoProc,
    CallTimeout,
    ChildSpec,
    GenServer,
    NoProcess,
    Supervisor,
    call,
    is_alive,
    link,
    self_pid,
    send,
    whereis,
)
from anyotp._core import (
    Ref,
    accept_monitor,
    deliver_down,
    pid_from_wire,
    set_transport,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Recorder(GenServer):
    """Records its terminate reason in the dict it was given."""

    async def init(self, log: dict[str, Any]) -> Any:
        self.log = log
        return None

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "stop_me":
            self.stop("asked")
        return request, state

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log["terminate"] = reason


class Stubborn(GenServer):
    """Takes a while in terminate: it stops only when released."""

    async def init(self, release: anyio.Event) -> Any:
        self.release = release
        return None

    async def terminate(self, reason: Any, state: Any) -> None:
        await self.release.wait()


class TestGenServerStop:
    async def test_stop_waits_until_the_server_is_dead_and_terminate_ran(self) -> None:
        log: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            pid = await Recorder.start(log, task_group=tg)
            assert await GenServer.stop(pid) == "normal"
            assert log == {"terminate": "normal"}
            assert not is_alive(pid)

    async def test_stop_on_a_subclass_with_a_reason_and_a_registered_name(self) -> None:
        log: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            await Recorder.start(log, task_group=tg, name="rec")
            assert await Recorder.stop("rec", "shutdown", timeout=5.0) == "shutdown"
            assert log == {"terminate": "shutdown"}
            assert whereis("rec") is None

    async def test_stop_of_a_dead_server_raises_callnoproc(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Recorder.start({}, task_group=tg)
            await GenServer.stop(pid)
            with pytest.raises(CallNoProc, match=r"that process is not alive") as info:
                await GenServer.stop(pid)
            assert isinstance(info.value, NoProcess)
            assert info.value.reason == "noproc"

    async def test_stop_of_an_unknown_name_raises_callnoproc(self) -> None:
        with pytest.raises(CallNoProc, match=r"no process is registered under that name"):
            await GenServer.stop("nobody")

    async def test_stop_that_does_not_finish_in_time_raises_calltimeout(self) -> None:
        release = anyio.Event()
        async with anyio.create_task_group() as tg:
            pid = await Stubborn.start(release, task_group=tg)
            with pytest.raises(CallTimeout, match=r"did not exit within 0.05 s") as info:
                await GenServer.stop(pid, timeout=0.05)
            assert info.value.timeout == 0.05
            assert info.value.server == pid
            release.set()  # it was asked to stop and keeps stopping
            await wait_until(lambda: not is_alive(pid), timeout=5, what="the exit")

    async def test_stop_of_a_linked_server_does_not_hit_the_caller(self) -> None:
        class Caller(Actor):
            async def init(self, target: PID, out: dict[str, Any], done: anyio.Event) -> Any:
                link(target)
                out["reason"] = await GenServer.stop(target, "shutdown")
                out["alive"] = is_alive(self_pid())
                done.set()
                return None

            async def run(self, state: Any) -> Any:
                await self.receive(("never", lambda: None))

        out: dict[str, Any] = {}
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            target = await Recorder.start({}, task_group=tg)
            caller = await Caller.start(target, out, done, task_group=tg)
            await done.wait()
            await Actor.stop(caller)
        assert out == {"reason": "shutdown", "alive": True}

    async def test_a_server_stopping_itself_with_the_class_form_raises_callerror(self) -> None:
        class Selfish(GenServer):
            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                try:
                    await GenServer.stop(self_pid())
                except CallError as e:
                    return e.reason, state
                return None, state

        async with anyio.create_task_group() as tg:
            pid = await Selfish.start(task_group=tg)
            assert await call(pid, "go") == "calling_self"
            await GenServer.stop(pid)


class TestStopInside:
    async def test_self_stop_in_a_handler_still_exits_with_the_reason(self) -> None:
        log: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            pid = await Recorder.start(log, task_group=tg)
            with pytest.raises(CallError):
                await call(pid, "stop_me")
            assert log == {"terminate": "asked"}

    async def test_the_unbound_form_with_an_actor_object_is_the_instance_method(self) -> None:
        class Quitter(Actor):
            async def run(self, state: Any) -> Any:
                await self.receive(("quit", lambda: Actor.stop(self, "bye")))

            async def terminate(self, reason: Any, state: Any) -> None:
                out.append(reason)

        out: list[Any] = []
        async with anyio.create_task_group() as tg:
            pid = await Quitter.start(task_group=tg)
            await send(pid, "quit")
            await wait_until(lambda: not is_alive(pid), timeout=5, what="the exit")
        assert out == ["bye"]


class TestAgentAndSupervisorStop:
    async def test_agent_stop_waits_for_the_agent(self) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: 1, task_group=tg)
            assert await Agent.stop(agent) == "normal"
            assert not is_alive(agent)

    async def test_supervisor_stop_stops_the_children_first(self) -> None:
        log: dict[str, Any] = {}

        class Sup(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="rec", actor_class=Recorder, args=(log,))]

        async with anyio.create_task_group() as tg:
            sup = await Sup.start(task_group=tg)
            assert await Supervisor.stop(sup) == "normal"
            assert log == {"terminate": "shutdown"}
            assert not is_alive(sup)


class _Loopback:
    """A transport whose "remote" PIDs stand for local processes (by id)."""

    def __init__(self) -> None:
        self.local: dict[int, PID] = {}
        self.remote: dict[int, PID] = {}

    def alias(self, pid: PID) -> PID:
        remote = pid_from_wire("elsewhere@test", 1, pid.id)
        self.local[pid.id] = pid
        self.remote[pid.id] = remote
        return remote

    def exit(self, sender: Any, to: PID, reason: Any, linked: bool) -> None:
        proc = self.local[to.id]._proc
        if proc is not None:
            proc.signal_exit(sender, reason, linked)

    def monitor(self, watcher: Any, ref: Ref, target: PID) -> None:
        accept_monitor(self.local[target.id], ref, watcher)

    def down(self, ref: Ref, pid: PID, reason: Any) -> None:
        deliver_down(ref, self.remote[pid.id], reason)

    def demonitor(self, ref: Ref, target: PID) -> None:
        pass


class TestRemoteStop:
    async def test_stop_of_a_remote_pid_sends_an_exit_signal_and_waits_for_down(self) -> None:
        log: dict[str, Any] = {}
        transport = _Loopback()

        class Caller(Actor):
            async def init(self, target: PID, out: dict[str, Any], done: anyio.Event) -> Any:
                out["reason"] = await GenServer.stop(target, "shutdown", timeout=5.0)
                done.set()
                return None

            async def run(self, state: Any) -> Any:
                await self.receive(("never", lambda: None))

        set_transport(transport)  # type: ignore[arg-type]
        try:
            out: dict[str, Any] = {}
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                target = await Recorder.start(log, task_group=tg)
                remote = transport.alias(target)
                caller = await Caller.start(remote, out, done, task_group=tg)
                await done.wait()
                await Actor.stop(caller)
        finally:
            set_transport(None)
        assert out == {"reason": "shutdown"}
        assert log == {"terminate": "shutdown"}
