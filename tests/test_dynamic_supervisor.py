"""DynamicSupervisor: start_child, terminate_child, max_children, restarts, shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from anyotp import (
    PID,
    ChildInfo,
    ChildSpec,
    DynamicSupervisor,
    From,
    GenServer,
    Registry,
    RestartType,
    StartError,
    Supervisor,
    SupervisorError,
    call,
    cast,
    exit_process,
    is_alive,
)
from anyotp.testing import wait_until, watch_exit

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("quiet_crash_logs")]

PERMANENT = RestartType.PERMANENT
TRANSIENT = RestartType.TRANSIENT
TEMPORARY = RestartType.TEMPORARY


# --------------------------------------------------------------------------- helpers


class Worker(GenServer):
    """Logs ``init``/``terminate`` to a shared list; ``"stubborn"`` never terminates."""

    async def init(self, name: str, log: list[Any], stubborn: bool = False) -> str:
        self.name = name
        self.log = log
        self.stubborn = stubborn
        log.append(("init", name))
        return name

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if request == "ping":
            return ("pong", self.name), state
        return None, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        self.stop(request)

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append(("terminate", self.name, reason))
        if self.stubborn:
            await anyio.sleep_forever()


class SlowTerminate(GenServer):
    async def init(self, seconds: float) -> float:
        return seconds

    async def terminate(self, reason: Any, state: float) -> None:
        await anyio.sleep(state)


class FailingInit(GenServer):
    async def init(self) -> None:
        raise RuntimeError("no database")


def worker(name: str, log: list[Any], **options: Any) -> ChildSpec:
    stubborn = options.pop("stubborn", False)
    return ChildSpec(id=name, actor_class=Worker, args=(name, log, stubborn), **options)


async def children(sup: PID) -> list[PID | None]:
    return [row.pid for row in await DynamicSupervisor.which_children(sup)]


async def wait_children(sup: PID, predicate: Callable[[list[PID | None]], bool]) -> list[Any]:
    """Poll ``which_children`` (deadline-bounded) until ``predicate`` holds."""

    async def holds() -> tuple[list[PID | None]] | None:
        now = await children(sup)
        return (now,) if predicate(now) else None

    (now,) = await wait_until(holds, timeout=2, what="the children to change")
    return now


# ---------------------------------------------------------------------- start_child


class TestStartChild:
    async def test_start_child_starts_a_running_child_and_returns_its_pid(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            assert await children(sup) == []
            pid = await DynamicSupervisor.start_child(sup, worker("a", log))
            assert await call(pid, "ping") == ("pong", "a")
            assert log == [("init", "a")]
            tg.cancel_scope.cancel()

    async def test_children_may_share_an_id(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            a = await DynamicSupervisor.start_child(sup, worker("same", log))
            b = await DynamicSupervisor.start_child(sup, worker("same", log))
            assert a != b
            rows = await DynamicSupervisor.which_children(sup)
            assert rows == [
                ChildInfo("same", a, "worker", Worker),
                ChildInfo("same", b, "worker", Worker),
            ]
            tg.cancel_scope.cancel()

    async def test_a_child_whose_init_fails_raises_supervisor_error_chaining_start_error(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            spec = ChildSpec(id="db", actor_class=FailingInit)
            with pytest.raises(SupervisorError, match=r"start_child\('db'\).*failed") as info:
                await DynamicSupervisor.start_child(sup, spec)
            assert isinstance(info.value.__cause__, StartError)
            assert is_alive(sup)
            assert await children(sup) == []
            tg.cancel_scope.cancel()

    async def test_start_child_with_something_else_than_a_child_spec_raises(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            with pytest.raises(SupervisorError, match="must be a ChildSpec"):
                await DynamicSupervisor.start_child(sup, Worker)  # type: ignore[arg-type]
            tg.cancel_scope.cancel()

    async def test_count_children_counts_running_workers_and_supervisors(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            await DynamicSupervisor.start_child(sup, worker("a", log))
            await DynamicSupervisor.start_child(sup, worker("b", log))
            await DynamicSupervisor.start_child(
                sup, ChildSpec(id="inner", actor_class=DynamicSupervisor)
            )
            assert await DynamicSupervisor.count_children(sup) == {
                "specs": 3,
                "active": 3,
                "supervisors": 1,
                "workers": 2,
            }
            tg.cancel_scope.cancel()


# ---------------------------------------------------------------------- max_children


class TestMaxChildren:
    async def test_start_child_beyond_max_children_raises_until_one_is_terminated(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg, max_children=2)
            a = await DynamicSupervisor.start_child(sup, worker("a", log))
            await DynamicSupervisor.start_child(sup, worker("b", log))
            with pytest.raises(SupervisorError, match=r"max_children reached.*max_children=2"):
                await DynamicSupervisor.start_child(sup, worker("c", log))
            assert ("init", "c") not in log
            await DynamicSupervisor.terminate_child(sup, a)
            await DynamicSupervisor.start_child(sup, worker("c", log))
            assert len(await children(sup)) == 2
            tg.cancel_scope.cancel()

    async def test_max_children_can_be_a_class_attribute(self) -> None:
        class One(DynamicSupervisor):
            max_children = 1

        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await One.start(task_group=tg)
            await DynamicSupervisor.start_child(sup, worker("a", log))
            with pytest.raises(SupervisorError, match="max_children=1"):
                await DynamicSupervisor.start_child(sup, worker("b", log))
            tg.cancel_scope.cancel()

    async def test_a_restarted_child_keeps_its_slot(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg, max_children=1)
            old = await DynamicSupervisor.start_child(sup, worker("a", log))
            exit_process(old, "boom")
            await wait_children(sup, lambda pids: pids not in ([], [old]))
            with pytest.raises(SupervisorError, match="max_children reached"):
                await DynamicSupervisor.start_child(sup, worker("b", log))
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize(
        ("option", "value"),
        [("max_children", -1), ("max_children", 1.5), ("max_restarts", -1), ("max_seconds", 0)],
    )
    async def test_an_invalid_option_fails_the_start(self, option: str, value: Any) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await DynamicSupervisor.start(task_group=tg, **{option: value})
            assert isinstance(info.value.__cause__, SupervisorError)
            assert option in str(info.value.__cause__)


# ------------------------------------------------------------------- terminate_child


class TestTerminateChild:
    async def test_terminate_child_by_pid_stops_it_and_forgets_it(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            a = await DynamicSupervisor.start_child(sup, worker("a", log, restart=PERMANENT))
            b = await DynamicSupervisor.start_child(sup, worker("b", log))
            await DynamicSupervisor.terminate_child(sup, a)
            assert not is_alive(a)
            assert ("terminate", "a", "shutdown") in log
            assert await children(sup) == [b]  # a permanent child is not restarted
            tg.cancel_scope.cancel()

    async def test_terminate_child_of_a_pid_that_is_not_a_child_raises(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            a = await DynamicSupervisor.start_child(sup, worker("a", log))
            await DynamicSupervisor.terminate_child(sup, a)
            with pytest.raises(SupervisorError, match="is not a child"):
                await DynamicSupervisor.terminate_child(sup, a)
            with pytest.raises(SupervisorError, match="is not a child"):
                await DynamicSupervisor.terminate_child(sup, sup)
            tg.cancel_scope.cancel()

    async def test_terminate_child_kills_a_child_that_overruns_its_shutdown(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            spec = worker("slow", log, stubborn=True, shutdown=0.05)
            pid = await DynamicSupervisor.start_child(sup, spec)
            reason = watch_exit(pid).reason
            with anyio.fail_after(2):
                await DynamicSupervisor.terminate_child(sup, pid)
            assert await reason() == "killed"
            tg.cancel_scope.cancel()

    async def test_supervisor_only_requests_of_the_static_supervisor_are_refused(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            with pytest.raises(SupervisorError, match="not supported by DynamicSupervisor"):
                await Supervisor.delete_child(sup, "a")
            tg.cancel_scope.cancel()


# -------------------------------------------------------------------------- restarts


class TestRestarts:
    async def test_a_permanent_child_is_restarted_with_a_new_pid(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            old = await DynamicSupervisor.start_child(sup, worker("a", log))
            exit_process(old, "boom")
            [new] = await wait_children(sup, lambda pids: len(pids) == 1 and pids[0] != old)
            assert new is not None
            assert await call(new, "ping") == ("pong", "a")
            assert log.count(("init", "a")) == 2
            tg.cancel_scope.cancel()

    async def test_a_permanent_child_is_restarted_even_after_a_normal_exit(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            old = await DynamicSupervisor.start_child(sup, worker("a", log))
            await DynamicSupervisor.start_child(sup, worker("other", log))
            await cast(old, "normal")
            await wait_children(sup, lambda pids: len(pids) == 2 and old not in pids)
            tg.cancel_scope.cancel()

    async def test_a_transient_child_is_restarted_after_a_crash_but_not_a_normal_exit(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            old = await DynamicSupervisor.start_child(sup, worker("t", log, restart=TRANSIENT))
            exit_process(old, "boom")
            [new] = await wait_children(sup, lambda pids: len(pids) == 1 and pids[0] != old)
            assert new is not None
            reason = watch_exit(new).reason
            await cast(new, "normal")
            assert await reason() == "normal"
            assert await children(sup) == []
            tg.cancel_scope.cancel()

    async def test_a_temporary_child_is_forgotten_when_it_crashes(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            pid = await DynamicSupervisor.start_child(sup, worker("tmp", log, restart=TEMPORARY))
            exit_process(pid, "boom")
            await wait_children(sup, lambda pids: pids == [])
            assert log.count(("init", "tmp")) == 1
            tg.cancel_scope.cancel()

    async def test_too_many_restarts_shut_the_supervisor_down_with_its_children(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg, max_restarts=1, max_seconds=5.0)
            sup_reason = watch_exit(sup).reason
            other = await DynamicSupervisor.start_child(sup, worker("other", log))
            first = await DynamicSupervisor.start_child(sup, worker("a", log))
            exit_process(first, "boom")
            [_, second] = await wait_children(
                sup, lambda pids: len(pids) == 2 and first not in pids
            )
            assert second is not None
            exit_process(second, "boom")
            assert await sup_reason() == "shutdown"
            assert not is_alive(other)
            assert ("terminate", "other", "shutdown") in log
            assert not is_alive(sup)


# -------------------------------------------------------------------------- shutdown


class TestShutdown:
    async def test_every_child_is_stopped_with_shutdown_restarted_ones_included(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            for name in ("a", "b", "c"):
                await DynamicSupervisor.start_child(sup, worker(name, log))
            b = (await children(sup))[1]
            assert b is not None
            exit_process(b, "boom")  # b restarts
            await wait_children(sup, lambda pids: len(pids) == 3 and b not in pids)
            log.clear()
            tg.cancel_scope.cancel()
        assert sorted(log) == [
            ("terminate", "a", "shutdown"),
            ("terminate", "b", "shutdown"),
            ("terminate", "c", "shutdown"),
        ]

    async def test_children_are_stopped_concurrently_each_within_its_shutdown(self) -> None:
        # OTP stops a dynamic supervisor's children concurrently: five children whose
        # terminate takes 0.2 s stop in about one such period, not five.
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                sup = await DynamicSupervisor.start(task_group=tg)
                for i in range(5):
                    spec = ChildSpec(id=f"slow{i}", actor_class=SlowTerminate, args=(0.2,))
                    await DynamicSupervisor.start_child(sup, spec)
                started = anyio.current_time()
                tg.cancel_scope.cancel()
            elapsed = anyio.current_time() - started
        assert 0.2 <= elapsed < 0.2 * 3, f"5 children took {elapsed:.2f} s to stop"

    async def test_a_child_that_overruns_its_shutdown_is_killed_when_the_supervisor_stops(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            spec = worker("slow", log, stubborn=True, shutdown=0.05)
            pid = await DynamicSupervisor.start_child(sup, spec)
            reason = watch_exit(pid).reason
            tg.cancel_scope.cancel()
        assert await reason() == "killed"
        assert not is_alive(sup)

    async def test_a_dynamic_supervisor_under_a_supervisor_is_a_supervisor_child(self) -> None:
        spec = ChildSpec(id="dyn", actor_class=DynamicSupervisor)
        assert spec.child_type == "supervisor"
        assert spec.shutdown_timeout is None

        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [spec]

        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            app = await App.start(task_group=tg)
            [row] = await Supervisor.which_children(app)
            assert row.type == "supervisor"
            assert row.pid is not None
            await DynamicSupervisor.start_child(row.pid, worker("a", log))
            tg.cancel_scope.cancel()
        assert log == [("init", "a"), ("terminate", "a", "shutdown")]


# --------------------------------------------------------------------------- names


def named(child_id: str, log: list[Any], name: Any) -> ChildSpec:
    """A Worker child registered under ``name``."""
    return ChildSpec(id=child_id, actor_class=Worker, args=(child_id, log), name=name)


class TestChildNames:
    async def test_start_child_with_a_via_name_whose_registry_is_dead_raises_and_all_live_on(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            sup = await DynamicSupervisor.start(task_group=tg)
            a = await DynamicSupervisor.start_child(sup, worker("a", log))
            dead = watch_exit(reg).reason
            exit_process(reg, "kill")
            assert await dead() == "killed"
            spec = named("b", log, ("via", reg, "b"))
            with pytest.raises(
                SupervisorError, match=r"start_child\('b'\) on .* failed: cannot start"
            ) as info:
                await DynamicSupervisor.start_child(sup, spec)
            assert isinstance(info.value.__cause__, StartError)
            assert is_alive(sup)
            assert await children(sup) == [a]
            tg.cancel_scope.cancel()

    async def test_a_restart_whose_registry_is_dead_is_a_counted_failure_not_a_crash(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            reg = await Registry.start(keys="unique", task_group=tg)
            sup = await DynamicSupervisor.start(max_restarts=3, task_group=tg)
            reason = watch_exit(sup).reason
            b = await DynamicSupervisor.start_child(sup, named("b", log, ("via", reg, "b")))
            exit_process(reg, "kill")
            exit_process(b, "kill")
            # Every restart fails (the registry stays dead); each failure counts, so
            # the supervisor gives up with "shutdown" instead of crashing on NoProcess.
            assert await reason() == "shutdown"
            tg.cancel_scope.cancel()
