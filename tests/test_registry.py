"""Registry: unique and duplicate keys, reads without messages, cleanup on exit,
via-names, and the pub/sub example."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from anyotp import (
    ANY,
    PID,
    Actor,
    CallNoProc,
    ChildSpec,
    From,
    GenServer,
    InvalidPattern,
    NoProcess,
    NotInProcess,
    Registry,
    StartError,
    Stop,
    Supervisor,
    SupervisorError,
    Via,
    ViaRegistry,
    call,
    cast,
    exit_process,
    is_alive,
    monitor,
    send_nowait,
)
from anyotp._core import Proc, route
from anyotp._registry import _Watch

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers


class Client(GenServer):
    """Runs each function it is called with in its own process (so ``Registry.register``
    registers *it*); ``"stop"`` stops it normally, a cast of ``"crash"`` crashes it.
    Info messages are recorded and ``seen`` is set."""

    async def init(self, setup: Callable[[], Any] | None = None) -> list[Any]:
        self.seen = anyio.Event()
        if setup is not None:
            setup()
        return []

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "stop":
            return Stop("normal", reply="stopping")
        if request == "infos":
            return list(state), state
        return request(), state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "crash":
            raise RuntimeError("crash on purpose")
        state.append(("cast", request))
        self.seen.set()
        return state

    async def handle_info(self, message: Any, state: Any) -> Any:
        state.append(message)
        self.seen.set()
        return state


class Watcher(Actor):
    """Monitors ``target``; on its DOWN, records the reason and what ``probe()``
    returned at that moment, then sets ``done`` and stops."""

    async def init(
        self, target: PID, box: dict[str, Any], done: anyio.Event, probe: Callable[[], Any]
    ) -> None:
        self.ref = monitor(target)
        self.box, self.done, self.probe = box, done, probe

    async def run(self, state: Any) -> Any:
        def down(reason: Any) -> None:
            self.box["reason"] = reason
            self.box["probe"] = self.probe()
            self.done.set()
            self.stop()

        return await self.receive((("DOWN", self.ref, "process", ANY, ANY), lambda _p, r: down(r)))


async def watch(
    tg: anyio.abc.TaskGroup, pid: PID, probe: Callable[[], Any] = lambda: None
) -> Callable[[], Any]:
    """Watch ``pid``; returns an async function that waits for its death (at most 2 s)
    and gives ``{"reason": ..., "probe": probe() at DOWN time}``."""
    box: dict[str, Any] = {}
    done = anyio.Event()
    await Watcher.start(pid, box, done, probe, task_group=tg)

    async def wait() -> dict[str, Any]:
        with anyio.fail_after(2):
            await done.wait()
        return box

    return wait


async def client(tg: anyio.abc.TaskGroup, setup: Callable[[], Any] | None = None) -> PID:
    return await Client.start(setup, task_group=tg)


def resolve(target: Any) -> Any:
    """The behaviour object of a live local process (the Registry instance)."""
    proc = route(target)
    return proc.body if type(proc) is Proc else None


def registry_watches(pid: PID) -> list[_Watch]:
    proc = route(pid)
    assert type(proc) is Proc
    return [m for m in proc.monitors.values() if isinstance(m, _Watch)]


# --------------------------------------------------------------------------- start


class TestStart:
    @pytest.mark.parametrize("keys", ["unique", "duplicate"])
    async def test_a_registry_starts_with_unique_or_duplicate_keys(self, keys: str) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys=keys, task_group=tg, name="MyRegistry")
            proc = resolve("MyRegistry")
            assert isinstance(proc, Registry)
            assert proc.pid == reg
            assert proc.kind == keys
            assert Registry.count(reg) == 0
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("keys", ["uniq", "UNIQUE", None, 1])
    async def test_start_with_bad_keys_raises_value_error_naming_the_value(self, keys: Any) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(ValueError, match=rf"got {keys!r}: start it with"):
                await Registry.start(keys=keys, task_group=tg, name="MyRegistry")
            with pytest.raises(ValueError, match=rf"got {keys!r}"):
                await Registry.start_link(keys=keys, task_group=tg)

    async def test_a_supervisor_child_registry_without_keys_fails_to_start_naming_it(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"Registry keys must be .* got None"):
                await Supervisor.start_child(sup, ChildSpec(id="reg", actor_class=Registry))
            tg.cancel_scope.cancel()

    async def test_a_registry_runs_as_a_supervisor_child(self) -> None:
        spec = ChildSpec(id="reg", actor_class=Registry, kwargs={"keys": "duplicate"})
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start(task_group=tg)
            reg = await Supervisor.start_child(sup, spec)
            pid = await client(tg, lambda: Registry.register(reg, "topic", 1))
            assert Registry.lookup(reg, "topic") == [(pid, 1)]
            tg.cancel_scope.cancel()

    async def test_a_registry_is_a_via_registry(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            assert isinstance(resolve(reg), ViaRegistry)
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- unique


class TestUniqueKeys:
    async def test_register_registers_the_calling_process_with_its_value(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            pid = await client(tg)
            assert await call(pid, lambda: Registry.register("MyRegistry", "k", {"v": 1})) is True
            assert Registry.lookup("MyRegistry", "k") == [(pid, {"v": 1})]
            assert Registry.lookup(reg, "k") == [(pid, {"v": 1})]
            assert Registry.keys(reg, pid) == ["k"]
            assert Registry.count(reg) == 1
            tg.cancel_scope.cancel()

    async def test_registering_a_taken_key_returns_false_and_keeps_the_holder(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            first = await client(tg, lambda: Registry.register(reg, "k", "first"))
            second = await client(tg)
            assert await call(second, lambda: Registry.register(reg, "k", "second")) is False
            assert Registry.lookup(reg, "k") == [(first, "first")]
            assert Registry.keys(reg, second) == []
            assert registry_watches(second) == []
            tg.cancel_scope.cancel()

    async def test_registering_a_key_the_caller_already_holds_returns_false(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            assert await call(pid, lambda: Registry.register(reg, "k", 2)) is False
            assert Registry.lookup(reg, "k") == [(pid, 1)]
            assert Registry.count(reg) == 1
            tg.cancel_scope.cancel()

    async def test_unregister_frees_the_key_for_another_process(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            first = await client(tg, lambda: Registry.register(reg, "k", 1))
            await call(first, lambda: Registry.unregister(reg, "k"))
            assert Registry.lookup(reg, "k") == []
            second = await client(tg)
            assert await call(second, lambda: Registry.register(reg, "k", 2)) is True
            assert Registry.lookup(reg, "k") == [(second, 2)]
            tg.cancel_scope.cancel()

    async def test_unregistering_someone_elses_key_does_nothing(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            holder = await client(tg, lambda: Registry.register(reg, "k", 1))
            other = await client(tg)
            await call(other, lambda: Registry.unregister(reg, "k"))
            await call(other, lambda: Registry.unregister(reg, "never registered"))
            assert Registry.lookup(reg, "k") == [(holder, 1)]
            tg.cancel_scope.cancel()

    async def test_update_value_replaces_the_callers_value_and_returns_new_and_old(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            assert await call(pid, lambda: Registry.update_value(reg, "k", lambda v: v + 1)) == (
                2,
                1,
            )
            assert Registry.lookup(reg, "k") == [(pid, 2)]
            assert await call(pid, lambda: Registry.update_value(reg, "nope", str)) is None
            tg.cancel_scope.cancel()

    async def test_update_value_on_a_duplicate_registry_raises_value_error(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)

            def update() -> Any:
                with pytest.raises(ValueError, match="needs a unique registry"):
                    Registry.update_value(reg, "k", str)
                return "raised"

            pid = await client(tg)
            assert await call(pid, update) == "raised"
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- duplicate


class TestDuplicateKeys:
    async def test_many_processes_register_under_one_key(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pids = [await client(tg, lambda i=i: Registry.register(reg, "t", i)) for i in range(3)]
            assert Registry.lookup(reg, "t") == [(p, i) for i, p in enumerate(pids)]
            assert Registry.count(reg) == 3
            tg.cancel_scope.cancel()

    async def test_one_process_may_register_a_key_twice_as_two_entries(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pid = await client(tg)
            assert await call(pid, lambda: Registry.register(reg, "t", "a")) is True
            assert await call(pid, lambda: Registry.register(reg, "t", "b")) is True
            await call(pid, lambda: Registry.register(reg, "u", "c"))
            assert Registry.lookup(reg, "t") == [(pid, "a"), (pid, "b")]
            assert Registry.keys(reg, pid) == ["t", "t", "u"]
            assert Registry.values(reg, "t", pid) == ["a", "b"]
            assert Registry.count(reg) == 3
            assert len(registry_watches(pid)) == 1  # one monitor per process, not per entry
            tg.cancel_scope.cancel()

    async def test_unregister_removes_all_the_callers_entries_under_the_key(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pid = await client(tg)
            other = await client(tg, lambda: Registry.register(reg, "t", "other"))
            for v in ("a", "b"):
                await call(pid, lambda v=v: Registry.register(reg, "t", v))
            await call(pid, lambda: Registry.register(reg, "u", "c"))
            await call(pid, lambda: Registry.unregister(reg, "t"))
            assert Registry.lookup(reg, "t") == [(other, "other")]
            assert Registry.keys(reg, pid) == ["u"]
            assert Registry.count(reg) == 2
            tg.cancel_scope.cancel()

    async def test_unregister_match_removes_only_matching_entries_of_the_caller(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pid = await client(tg)
            for v in (("a", 1), ("b", 2), ("a", 3)):
                await call(pid, lambda v=v: Registry.register(reg, "t", v))
            removed = await call(pid, lambda: Registry.unregister_match(reg, "t", ("a", int)))
            assert removed == 2
            assert Registry.lookup(reg, "t") == [(pid, ("b", 2))]
            assert await call(pid, lambda: Registry.unregister_match(reg, "t", "zzz")) == 0
            assert await call(pid, lambda: Registry.unregister_match(reg, "t", ANY)) == 1
            assert Registry.count(reg) == 0
            assert registry_watches(pid) == []
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- reads


class TestReads:
    async def test_lookup_of_an_unknown_key_is_an_empty_list(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            assert Registry.lookup(reg, "nobody") == []
            tg.cancel_scope.cancel()

    async def test_match_and_count_match_filter_values_with_an_anyotp_pattern(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            values = [("admin", 1), ("user", 2), ("user", 3), "not a tuple"]
            pids = [await client(tg, lambda v=v: Registry.register(reg, "k", v)) for v in values]
            assert Registry.match(reg, "k", ("user", int)) == [
                (pids[1], ("user", 2)),
                (pids[2], ("user", 3)),
            ]
            assert Registry.match(reg, "k", (ANY, lambda n: n > 2)) == [(pids[2], ("user", 3))]
            assert Registry.match(reg, "k", str) == [(pids[3], "not a tuple")]
            assert Registry.match(reg, "other", ANY) == []
            assert Registry.count_match(reg, "k", (str, int)) == 3
            assert Registry.count(reg) == 4
            tg.cancel_scope.cancel()

    async def test_keys_of_an_unregistered_process_is_an_empty_list(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg)
            assert Registry.keys(reg, pid) == []
            assert Registry.values(reg, "k", pid) == []
            tg.cancel_scope.cancel()

    async def test_dispatch_calls_a_sync_function_with_the_entries(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pids = [await client(tg, lambda: Registry.register(reg, "t", None)) for _ in range(2)]
            got: list[Any] = []
            await Registry.dispatch(reg, "t", got.append)
            assert got == [[(p, None) for p in pids]]
            tg.cancel_scope.cancel()

    async def test_dispatch_awaits_an_async_function(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "t", "v"))
            got: list[Any] = []

            async def fn(entries: list[tuple[PID, Any]]) -> None:
                await anyio.lowlevel.checkpoint()
                got.extend(entries)

            await Registry.dispatch(reg, "t", fn)
            assert got == [(pid, "v")]
            tg.cancel_scope.cancel()

    async def test_dispatch_sends_to_every_entry_and_skips_an_empty_key(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "t", "v"))
            calls: list[Any] = []
            await Registry.dispatch(reg, "empty", calls.append)
            assert calls == []  # like Elixir: no entries, no call
            await Registry.dispatch(
                reg, "t", lambda entries: [send_nowait(p, ("msg", v)) for p, v in entries]
            )
            proc = resolve(pid)
            assert isinstance(proc, Client)
            with anyio.fail_after(2):
                await proc.seen.wait()
            assert await call(pid, "infos") == [("msg", "v")]
            tg.cancel_scope.cancel()

    async def test_an_exception_in_the_dispatch_function_reaches_the_caller(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            await client(tg, lambda: Registry.register(reg, "t", "v"))

            def fail(entries: Any) -> None:
                raise KeyError("from fn")

            with pytest.raises(KeyError, match="from fn"):
                await Registry.dispatch(reg, "t", fail)
            tg.cancel_scope.cancel()

    async def test_the_registry_may_be_named_by_pid_name_or_object(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            pid = await client(tg, lambda: Registry.register("MyRegistry", "k", 1))
            obj = resolve(reg)
            assert isinstance(obj, Registry)
            for name in (reg, "MyRegistry", obj):
                assert Registry.lookup(name, "k") == [(pid, 1)]
            tg.cancel_scope.cancel()

    async def test_reads_work_from_a_worker_thread(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            assert await anyio.to_thread.run_sync(Registry.lookup, reg, "k") == [(pid, 1)]
            tg.cancel_scope.cancel()


class TestMisuse:
    async def test_register_outside_a_process_raises_not_in_process(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            with pytest.raises(NotInProcess, match="registers the calling process"):
                Registry.register(reg, "k", 1)
            with pytest.raises(NotInProcess, match="acts on the calling process"):
                Registry.unregister(reg, "k")
            tg.cancel_scope.cancel()

    async def test_an_unknown_registry_raises_no_process(self) -> None:
        with pytest.raises(NoProcess, match=r"Registry.lookup\(\): the registry 'nope' is not"):
            Registry.lookup("nope", "k")
        with pytest.raises(NoProcess, match="is not alive"):
            Registry.count("nope")

    async def test_a_process_that_is_not_a_registry_raises_type_error(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await client(tg)
            with pytest.raises(TypeError, match=r"is a Client, not a Registry"):
                Registry.lookup(pid, "k")
            tg.cancel_scope.cancel()

    async def test_an_unhashable_key_raises_type_error_naming_it(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)

            def register() -> str:
                with pytest.raises(TypeError, match=r"must be hashable, got list \[1\]"):
                    Registry.register(reg, [1], None)
                return "raised"

            pid = await client(tg)
            assert await call(pid, register) == "raised"
            assert Registry.count(reg) == 0
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- cleanup


class TestCleanup:
    async def test_entries_of_a_crashed_process_vanish_before_its_down_is_handled(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            survivor = await client(tg, lambda: Registry.register(reg, "t", "survivor"))
            pid = await client(tg)
            for key in ("t", "u", "t"):
                await call(pid, lambda key=key: Registry.register(reg, key, "doomed"))
            dead = await watch(tg, pid, lambda: (Registry.lookup(reg, "t"), Registry.count(reg)))
            await cast(pid, "crash")
            box = await dead()
            assert isinstance(box["reason"], RuntimeError)
            assert box["probe"] == ([(survivor, "survivor")], 1)
            assert Registry.lookup(reg, "u") == []
            assert Registry.keys(reg, pid) == []
            tg.cancel_scope.cancel()

    async def test_entries_of_a_process_that_exits_normally_vanish(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            dead = await watch(tg, pid, lambda: Registry.lookup(reg, "k"))
            assert await call(pid, "stop") == "stopping"
            box = await dead()
            assert box == {"reason": "normal", "probe": []}
            assert Registry.count(reg) == 0
            tg.cancel_scope.cancel()

    async def test_entries_of_a_killed_process_vanish_and_the_key_is_free_again(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            dead = await watch(tg, pid, lambda: Registry.lookup(reg, "k"))
            exit_process(pid, "kill")
            assert await dead() == {"reason": "killed", "probe": []}
            successor = await client(tg)
            assert await call(successor, lambda: Registry.register(reg, "k", 2)) is True
            tg.cancel_scope.cancel()

    async def test_unregistering_the_last_key_removes_the_registrys_monitor(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "a", 1))
            await call(pid, lambda: Registry.register(reg, "b", 2))
            assert len(registry_watches(pid)) == 1
            await call(pid, lambda: Registry.unregister(reg, "a"))
            assert len(registry_watches(pid)) == 1
            await call(pid, lambda: Registry.unregister(reg, "b"))
            assert registry_watches(pid) == []
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("how", ["shutdown", "kill"])
    async def test_registry_death_clears_its_table_and_leaves_registrants_alone(
        self, how: str
    ) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            obj = resolve(reg)
            assert isinstance(obj, Registry)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            dead = await watch(tg, reg)
            exit_process(reg, how)
            await dead()
            assert is_alive(pid)
            assert registry_watches(pid) == []
            assert obj._otp_entries == {}
            assert obj._otp_by_pid == {}
            assert obj._otp_count == 0
            for name in (reg, "MyRegistry", obj):
                with pytest.raises(NoProcess, match="not alive"):
                    Registry.lookup(name, "k")

            def register_again() -> str:
                with pytest.raises(NoProcess, match="not alive"):
                    Registry.register(obj, "k", 1)
                return "raised"

            assert await call(pid, register_again) == "raised"
            # a new registry under the same name starts empty
            await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            assert Registry.lookup("MyRegistry", "k") == []
            tg.cancel_scope.cancel()

    async def test_many_processes_registering_and_dying_leave_the_table_consistent(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            keep = await client(tg, lambda: Registry.register(reg, "t", "keep"))
            pids = [await client(tg, lambda: Registry.register(reg, "t", "x")) for _ in range(20)]
            waits = [await watch(tg, p) for p in pids]
            for p in pids:
                exit_process(p, "kill")
            for w in waits:
                await w()
            assert Registry.lookup(reg, "t") == [(keep, "keep")]
            assert Registry.count(reg) == 1
            tg.cancel_scope.cancel()

    async def test_registration_races_with_death_from_another_thread(self) -> None:
        # The monitor that drops entries may run on another thread (sync servers die
        # there): removal takes the table lock, so concurrent writes stay consistent.
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            obj = resolve(reg)
            assert isinstance(obj, Registry)
            pid = await client(tg)
            stop = threading.Event()

            def drop_forever() -> None:
                while not stop.is_set():
                    obj._drop_pid(pid)

            def register_many() -> int:
                for i in range(2000):
                    Registry.register(reg, "t", i)
                return len(Registry.lookup(reg, "t"))

            async with anyio.create_task_group() as inner:
                inner.start_soon(anyio.to_thread.run_sync, drop_forever)
                try:
                    await call(pid, register_many)
                finally:
                    stop.set()
            assert Registry.count(reg) == len(Registry.lookup(reg, "t"))
            assert Registry.keys(reg, pid) == ["t"] * Registry.count(reg)
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- via-names


class Worker(GenServer):
    """Replies ("pong", its pid) to "ping"; records casts and infos."""

    async def init(self) -> list[Any]:
        self.seen = anyio.Event()
        return []

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "ping":
            return ("pong", self.pid), state
        return list(state), state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        self.seen.set()
        return [*state, ("cast", request)]

    async def handle_info(self, message: Any, state: Any) -> Any:
        self.seen.set()
        return [*state, ("info", message)]


class TestVia:
    async def test_start_with_a_via_name_registers_the_process_with_value_none(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            pid = await Worker.start(task_group=tg, name=("via", "MyRegistry", "worker1"))
            assert Registry.lookup(reg, "worker1") == [(pid, None)]
            tg.cancel_scope.cancel()

    async def test_send_cast_and_call_reach_a_process_by_its_via_name(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            pid = await Worker.start(task_group=tg, name=Via(reg, "worker1"))
            for name in (("via", "MyRegistry", "worker1"), Via(reg, "worker1")):
                assert await call(name, "ping") == ("pong", pid)
            await cast(("via", "MyRegistry", "worker1"), "c")
            send_nowait(Via("MyRegistry", "worker1"), "i")
            assert await call(pid, "log") == [("cast", "c"), ("info", "i")]
            tg.cancel_scope.cancel()

    async def test_a_process_started_with_a_via_name_leaves_the_registry_when_it_exits(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            name = ("via", "MyRegistry", "worker1")
            pid = await Worker.start(task_group=tg, name=name)
            dead = await watch(tg, pid)
            exit_process(pid, "kill")
            await dead()
            with pytest.raises(NoProcess, match="is alive"):
                send_nowait(name, "hello")
            with pytest.raises(CallNoProc):
                await call(name, "ping")
            # the name is free again
            again = await Worker.start(task_group=tg, name=name)
            assert await call(name, "ping") == ("pong", again)
            tg.cancel_scope.cancel()

    async def test_a_second_start_under_a_taken_via_name_raises_start_error_naming_the_holder(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
            name = ("via", "MyRegistry", "worker1")
            holder = await Worker.start(task_group=tg, name=name)
            with pytest.raises(StartError, match=rf"already registered to {holder!r}") as info:
                await Worker.start(task_group=tg, name=name)
            assert info.value.reason == ("already_started", holder)
            assert Registry.lookup(reg, "worker1") == [(holder, None)]
            tg.cancel_scope.cancel()

    async def test_concurrent_starts_under_one_via_name_start_exactly_one(self) -> None:
        results: list[Any] = []

        async def start_one() -> None:
            try:
                results.append(await Worker.start(task_group=tg, name=("via", "R", "w")))
            except StartError as e:
                results.append(e)

        async with anyio.create_task_group() as tg:
            await Registry.start(keys="unique", task_group=tg, name="R")
            async with anyio.create_task_group() as starters:
                for _ in range(5):
                    starters.start_soon(start_one)
            started = [r for r in results if isinstance(r, PID)]
            assert len(started) == 1
            assert [r.reason for r in results if isinstance(r, StartError)] == [
                ("already_started", started[0])
            ] * 4
            tg.cancel_scope.cancel()

    async def test_a_via_name_on_a_duplicate_registry_is_a_clear_error(self) -> None:
        async with anyio.create_task_group() as tg:
            await Registry.start(keys="duplicate", task_group=tg, name="Topics")
            name = ("via", "Topics", "w")
            with pytest.raises(ValueError, match="via-names need a unique registry"):
                send_nowait(name, "hello")
            with pytest.raises(StartError, match="via-names need a unique registry") as e:
                await Worker.start(task_group=tg, name=name)
            assert isinstance(e.value.__cause__, ValueError)
            # the failed start left nothing behind (the autouse fixture checks too)
            assert Registry.count("Topics") == 0
            tg.cancel_scope.cancel()

    async def test_a_via_name_on_a_dead_registry_raises_no_process(self) -> None:
        with pytest.raises(NoProcess, match="the registry 'Gone' is not alive"):
            send_nowait(("via", "Gone", "w"), "hello")
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match="the registry 'Gone' is not alive") as e:
                await Worker.start(task_group=tg, name=("via", "Gone", "w"))
            assert isinstance(e.value.__cause__, NoProcess)

    async def test_unregister_name_removes_the_key_whoever_holds_it(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await Worker.start(task_group=tg, name=Via(reg, "w"))
            obj = resolve(reg)
            assert isinstance(obj, Registry)
            assert obj.whereis_name("w") == pid
            obj.unregister_name("w")
            assert obj.whereis_name("w") is None
            assert registry_watches(pid) == []
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- example


class TestPubSubExample:
    async def test_the_pubsub_example_runs_and_the_crashed_subscriber_disappears(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        spec = importlib.util.spec_from_file_location(
            "pubsub_example", ROOT / "examples" / "pubsub.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with anyio.fail_after(5):
            await module.main()
        out = capsys.readouterr().out
        assert "subscribers of 'news': ['alice', 'bob', 'carol']" in out
        assert "subscribers of 'news': ['alice', 'carol']" in out
        assert "\"alice got 'still there?' on 'news'\"" in out
        assert "bob got 'still there?'" not in out


# --------------------------------------------------------------------------- additions


class TestMetaSelectAndUpdates:
    async def test_meta_given_at_start_is_read_back_and_put_meta_replaces_it(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", meta={"partitions": 4}, task_group=tg)
            assert Registry.meta(reg, "partitions") == 4
            Registry.put_meta(reg, "partitions", 8)
            Registry.put_meta(reg, ("owner", 1), None)
            assert Registry.meta(reg, "partitions") == 8
            assert Registry.meta(reg, ("owner", 1)) is None
            tg.cancel_scope.cancel()

    async def test_meta_of_a_missing_key_raises_key_error_or_returns_the_default(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg, name="MyRegistry")
            with pytest.raises(KeyError, match=r"no metadata under 'nope' \(set it with"):
                Registry.meta("MyRegistry", "nope")
            assert Registry.meta(reg, "nope", default="fallback") == "fallback"
            Registry.put_meta(reg, "gone", 1)
            Registry.delete_meta(reg, "gone")
            Registry.delete_meta(reg, "never set")  # nothing to delete: no error
            assert Registry.meta(reg, "gone", None) is None
            tg.cancel_scope.cancel()

    async def test_meta_can_be_read_and_written_from_a_plain_thread(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            await anyio.to_thread.run_sync(Registry.put_meta, reg, "from", "thread")
            assert await anyio.to_thread.run_sync(Registry.meta, reg, "from") == "thread"
            tg.cancel_scope.cancel()

    async def test_meta_rejects_a_non_dict_at_start_and_an_unhashable_key(self) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match="init exited with TypeError"):
                await Registry.start(keys="unique", meta=[("a", 1)], task_group=tg)
            reg = await Registry.start(keys="unique", task_group=tg)
            with pytest.raises(TypeError, match=r"the key must be hashable, got list"):
                Registry.put_meta(reg, ["a"], 1)
            tg.cancel_scope.cancel()

    async def test_meta_on_a_dead_registry_raises_no_process(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", meta={"a": 1}, task_group=tg)
            exit_process(reg, "kill")
            with anyio.fail_after(2):
                while is_alive(reg):
                    await anyio.sleep(0.001)
            with pytest.raises(NoProcess, match=r"Registry.meta\(\): the registry"):
                Registry.meta(reg, "a")
            with pytest.raises(NoProcess, match=r"Registry.put_meta\(\): the registry"):
                Registry.put_meta(reg, "a", 2)
            tg.cancel_scope.cancel()

    async def test_select_matches_key_pid_value_triples_across_all_keys(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            a = await client(tg, lambda: Registry.register(reg, ("room", 1), "alice"))
            b = await client(tg, lambda: Registry.register(reg, ("room", 2), "bob"))
            c = await client(tg, lambda: Registry.register(reg, "lobby", "carol"))
            assert Registry.select(reg, (("room", ANY), ANY, ANY)) == [
                (("room", 1), a, "alice"),
                (("room", 2), b, "bob"),
            ]
            assert Registry.select(reg, (ANY, c, ANY)) == [("lobby", c, "carol")]
            assert Registry.select(reg, (ANY, ANY, lambda v: v.startswith("b"))) == [
                (("room", 2), b, "bob")
            ]
            assert Registry.select(reg, ANY) == Registry.select(reg, (ANY, ANY, ANY))
            assert len(Registry.select(reg, ANY)) == 3
            assert Registry.count_select(reg, (("room", int), PID, str)) == 2
            assert Registry.count_select(reg, ("nobody", ANY, ANY)) == 0
            tg.cancel_scope.cancel()

    async def test_select_forgets_the_entries_of_a_process_that_exited(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "k", 1))
            wait = await watch(tg, pid)
            assert await call(pid, "stop") == "stopping"
            await wait()
            assert Registry.select(reg, ANY) == []
            assert Registry.count_select(reg, ANY) == 0
            tg.cancel_scope.cancel()

    async def test_a_dict_literal_in_a_select_pattern_raises_invalid_pattern(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            with pytest.raises(InvalidPattern, match="dict"):
                Registry.select(reg, (ANY, ANY, {"a": 1}))
            tg.cancel_scope.cancel()

    async def test_update_value_replaces_the_callers_own_value_and_returns_new_and_old(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            pid = await client(tg, lambda: Registry.register(reg, "counter", 1))
            assert await call(pid, lambda: Registry.update_value(reg, "counter", lambda n: n + 1))
            assert Registry.lookup(reg, "counter") == [(pid, 2)]
            assert await call(pid, lambda: Registry.update_value(reg, "other", str)) is None
            assert await call(pid, lambda: Registry.update_value(reg, "counter", str)) == ("2", 2)
            tg.cancel_scope.cancel()

    async def test_count_match_counts_values_matching_a_pattern_under_one_key(self) -> None:
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="duplicate", task_group=tg)
            for v in (1, 2, "x"):
                await client(tg, lambda v=v: Registry.register(reg, "k", v))
            assert Registry.count_match(reg, "k", int) == 2
            assert Registry.count_match(reg, "k", lambda v: v == "x") == 1
            assert Registry.count_match(reg, "missing", ANY) == 0
            tg.cancel_scope.cancel()
