"""The user's object is not the runtime: attribute names a user may pick freely.

Runtime state lives in the process control block, not in the behaviour object, so a
subclass that stores its own ``_name``, ``_state``, ``_loop``... in ``init`` (and reads
them back in its handlers) leaves the process working: calls, casts, messages,
restarts, exit signals and stops.  Each test runs once per name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import anyotp
import anyotp.sync
from anyotp import (
    Actor,
    Agent,
    ChildSpec,
    From,
    GenServer,
    KeepState,
    StateMachine,
    Supervisor,
    call,
    cast,
    exit_process,
    is_alive,
    send,
)
from anyotp.testing import wait_until, watch_exit

NAMES = [
    "_name",
    "_state",
    "_loop",
    "_tasks",
    "_links",
    "_status",
    "_parent",
    "_task",
    "_children",
    "_timers",
    "_queue",
    "_mbox",
]

names = pytest.mark.parametrize("attr", NAMES)


def wait_until_in_thread(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Poll ``predicate`` from a plain thread until it is true, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not true within {timeout} s")
        time.sleep(0.005)


def mine(attr: str, n: int = 0) -> tuple[str, str, int]:
    """The value a test stores under ``attr``: nothing the runtime would put there."""
    return ("user", attr, n)


# ---------------------------------------------------------------------------- Actor


@pytest.mark.anyio
@names
async def test_an_actor_with_a_user_attribute_named_like_runtime_state_keeps_working(
    attr: str,
) -> None:
    seen: list[Any] = []
    terminated: list[Any] = []
    got = anyio.Event()

    class Holder(Actor):
        async def init(self) -> int:
            setattr(self, attr, mine(attr))
            return 0

        async def run(self, state: int) -> int:
            def bump() -> int:
                setattr(self, attr, mine(attr, state + 1))
                seen.append(getattr(self, attr))
                got.set()
                return state + 1

            return await self.receive(("bump", bump))

        async def terminate(self, reason: Any, state: int) -> None:
            terminated.append((reason, getattr(self, attr)))

    async with anyio.create_task_group() as tg:
        pid = await Holder.start(task_group=tg)
        await send(pid, "bump")
        with anyio.fail_after(5):
            await got.wait()
        assert seen == [mine(attr, 1)]
        watch = watch_exit(pid)
        exit_process(pid, "shutdown")
        assert await watch.reason() == "shutdown"
    assert terminated == [("shutdown", mine(attr, 1))]


# ------------------------------------------------------------------------ GenServer


@pytest.mark.anyio
@names
async def test_a_genserver_with_a_user_attribute_named_like_runtime_state_keeps_working(
    attr: str,
) -> None:
    terminated: list[Any] = []

    class Holder(GenServer):
        async def init(self) -> int:
            setattr(self, attr, mine(attr))
            return 0

        async def handle_call(self, request: Any, from_: From, state: int) -> Any:
            return (getattr(self, attr), state), state

        async def handle_cast(self, request: Any, state: int) -> int:
            setattr(self, attr, mine(attr, state + 1))
            return state + 1

        async def handle_info(self, message: Any, state: int) -> int:
            return await self.handle_cast(message, state)

        async def terminate(self, reason: Any, state: int) -> None:
            terminated.append((reason, getattr(self, attr)))

    async with anyio.create_task_group() as tg:
        pid = await Holder.start(task_group=tg, name="holder")
        assert await call(pid, "get") == (mine(attr), 0)
        await cast("holder", "bump")
        await send(pid, "bump")
        assert await call("holder", "get") == (mine(attr, 2), 2)
        watch = watch_exit(pid)
        exit_process(pid, "boom")
        assert await watch.reason() == "boom"
        assert not is_alive(pid)
    assert terminated == [("boom", mine(attr, 2))]


# ----------------------------------------------------------------------- Supervisor


class Child(GenServer):
    async def init(self, log: list[Any]) -> None:
        self.log = log
        log.append(("init", self.pid))

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return "pong", state

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append(("terminate", reason))


@pytest.mark.anyio
@names
async def test_a_supervisor_with_a_user_attribute_named_like_runtime_state_supervises(
    attr: str,
) -> None:
    log: list[Any] = []

    class Sup(Supervisor):
        async def init(self, *args: Any) -> Any:
            setattr(self, attr, mine(attr))
            return await super().init(*args)

        def child_specs(self) -> list[ChildSpec]:
            return [
                ChildSpec(id="a", actor_class=Child, args=(log,)),
                ChildSpec(id="b", actor_class=Child, args=(log,)),
            ]

        async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
            if request == "attr":
                return getattr(self, attr), state
            return await super().handle_call(request, from_, state)

    async with anyio.create_task_group() as tg:
        sup = await Sup.start(task_group=tg)
        assert await call(sup, "attr") == mine(attr)
        a, b = [row.pid for row in await Supervisor.which_children(sup)]
        assert a is not None
        assert b is not None
        assert await call(a, "ping") == "pong"

        exit_process(a, "boom")  # restarted

        async def restarted() -> bool:
            pid = (await Supervisor.which_children(sup))[0].pid
            return pid is not None and pid != a

        await wait_until(restarted, what="child a restarted")
        new_a = (await Supervisor.which_children(sup))[0].pid
        assert new_a is not None
        assert await call(new_a, "ping") == "pong"

        await Supervisor.terminate_child(sup, "b")
        assert not is_alive(b)
        assert await call(sup, "attr") == mine(attr)

        watch = watch_exit(sup)
        tg.cancel_scope.cancel()  # the supervisor stops its children, then itself
    assert await watch.reason() == "shutdown"
    assert not is_alive(new_a)
    assert log.count(("terminate", "shutdown")) == 2  # b, then the restarted a


# --------------------------------------------------------------------- StateMachine


@pytest.mark.anyio
@names
async def test_a_state_machine_with_a_user_attribute_named_like_runtime_state_keeps_working(
    attr: str,
) -> None:
    class Switch(StateMachine):
        async def init(self) -> Any:
            setattr(self, attr, mine(attr))
            return "off", 0

        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            if event_type == "cast":
                setattr(self, attr, mine(attr, data + 1))
                return ("on" if state == "off" else "off"), data + 1
            if isinstance(event_type, tuple) and event_type[0] == "call":
                return KeepState(actions=[("reply", event_type[1], (state, getattr(self, attr)))])
            return KeepState()

    async with anyio.create_task_group() as tg:
        pid = await Switch.start(task_group=tg)
        assert await call(pid, "get") == ("off", mine(attr))
        await cast(pid, "flip")
        assert await call(pid, "get") == ("on", mine(attr, 1))
        watch = watch_exit(pid)
        exit_process(pid, "shutdown")
        assert await watch.reason() == "shutdown"


# ---------------------------------------------------------------------------- Agent


@pytest.mark.anyio
@names
async def test_an_agent_with_a_user_attribute_named_like_runtime_state_keeps_working(
    attr: str,
) -> None:
    class Box(Agent):
        async def init(self, value: int) -> int:
            setattr(self, attr, mine(attr))
            return value

        async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            if request == "attr":
                return getattr(self, attr), state
            return await super().handle_call(request, from_, state)

    async with anyio.create_task_group() as tg:
        pid = await Box.start(1, task_group=tg)
        await Agent.update(pid, lambda v: v + 1)
        await Agent.cast(pid, lambda v: v * 10)
        assert await Agent.get(pid, lambda v: v) == 20
        assert await call(pid, "attr") == mine(attr)
        watch = watch_exit(pid)
        exit_process(pid, "shutdown")
        assert await watch.reason() == "shutdown"


# ------------------------------------------------------------------ the sync server


class SyncHolder(anyotp.sync.GenServer[int]):
    attr = "_name"

    def init(self, log: list[Any]) -> int:
        self.log = log
        setattr(self, self.attr, mine(self.attr))
        return 0

    def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
        return (getattr(self, self.attr), state), state

    def handle_cast(self, message: dict[str, Any], state: int) -> int:
        setattr(self, self.attr, mine(self.attr, state + 1))
        return state + 1

    def terminate(self, state: int) -> None:
        self.log.append(("terminate", getattr(self, self.attr)))


@pytest.fixture
def sync_holder(attr: str) -> Iterator[tuple[SyncHolder, list[Any]]]:
    class Holder(SyncHolder):
        pass

    Holder.attr = attr
    log: list[Any] = []
    server = Holder()
    server.start(log)
    yield server, log
    if server.exit_reason is None:
        server.stop(5.0)


class TestSyncServer:
    @names
    def test_a_sync_server_with_a_user_attribute_named_like_runtime_state_serves_and_stops(
        self, attr: str, sync_holder: tuple[SyncHolder, list[Any]]
    ) -> None:
        server, log = sync_holder
        assert anyotp.register(f"holder{attr}", server.pid)
        assert anyotp.sync.call(f"holder{attr}", {}) == (mine(attr), 0)
        anyotp.sync.cast(f"holder{attr}", {})
        server.cast({})
        assert server.call({}) == (mine(attr, 2), 2)
        server.stop(5.0)
        assert log == [("terminate", mine(attr, 2))]
        assert f"holder{attr}" not in anyotp.registered()

    @names
    def test_a_sync_server_with_a_user_attribute_named_like_runtime_state_obeys_exit_signals(
        self, attr: str, sync_holder: tuple[SyncHolder, list[Any]]
    ) -> None:
        server, log = sync_holder
        assert anyotp.register(f"holder{attr}", server.pid)
        anyotp.sync.cast(server.pid, {})
        assert server.call({}) == (mine(attr, 1), 1)  # handled: an exit signal overtakes
        exit_process(f"holder{attr}", "shutdown")
        wait_until_in_thread(lambda: not is_alive(server.pid), "the server exited")
        assert server.exit_reason == "shutdown"
        assert log == [("terminate", mine(attr, 1))]
