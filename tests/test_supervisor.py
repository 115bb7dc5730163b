"""Supervisor: start order, strategies, restart types, intensity, shutdown, runtime API."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from anyotp import (
    PID,
    CallExit,
    ChildInfo,
    ChildSpec,
    From,
    GenServer,
    NoProcess,
    Registry,
    RestartStrategy,
    RestartType,
    StartError,
    Supervisor,
    SupervisorError,
    Via,
    call,
    cast,
    exit_process,
    is_alive,
    processes,
    register,
    whereis,
)
from anyotp.testing import wait_until, watch_exit

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("quiet_crash_logs")]

ONE_FOR_ONE = RestartStrategy.ONE_FOR_ONE
ONE_FOR_ALL = RestartStrategy.ONE_FOR_ALL
REST_FOR_ONE = RestartStrategy.REST_FOR_ONE
PERMANENT = RestartType.PERMANENT
TRANSIENT = RestartType.TRANSIENT
TEMPORARY = RestartType.TEMPORARY


# --------------------------------------------------------------------------- helpers


class Worker(GenServer):
    """A child that logs ``init``/``terminate`` to a shared list and obeys commands."""

    async def init(self, name: str, log: list[Any]) -> str:
        self.name = name
        self.log = log
        log.append(("init", name))
        await anyio.lowlevel.checkpoint()  # let anything else run mid-init
        log.append(("ready", name))
        return name

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        match request:
            case "ping":
                return ("pong", self.name), state
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
        return None, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        match request:
            case ("stop", reason):
                self.stop(reason)
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
        return state

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append(("terminate", self.name, reason))


class Named(GenServer):
    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return "here", state


def worker(name: str, log: list[Any], **options: Any) -> ChildSpec:
    return ChildSpec(id=name, actor_class=Worker, args=(name, log), **options)


def make_sup(
    specs: Callable[[], list[ChildSpec]],
    strategy: RestartStrategy = ONE_FOR_ONE,
    max_restarts: int = 3,
    max_seconds: float = 5.0,
) -> type[Supervisor]:
    class Sup(Supervisor):
        def child_specs(self) -> list[ChildSpec]:
            return specs()

    Sup.strategy = strategy
    Sup.max_restarts = max_restarts
    Sup.max_seconds = max_seconds
    return Sup


async def pids(sup: PID | str) -> dict[str, PID | None]:
    return {c.id: c.pid for c in await Supervisor.which_children(sup)}


async def wait_pid_change(sup: PID, child_id: str, old: PID | None) -> PID | None:
    """Wait until the supervisor reports a PID for ``child_id`` other than ``old``."""

    async def changed() -> tuple[PID | None] | None:
        now = (await pids(sup)).get(child_id, old)
        return (now,) if now != old else None

    (now,) = await wait_until(changed, timeout=2, what=f"a new PID for {child_id!r}")
    return now


async def wait_gone(sup: PID, child_id: str) -> None:
    async def gone() -> bool:
        return child_id not in await pids(sup)

    await wait_until(gone, timeout=2, what=f"{child_id!r} gone from the children")


async def wait_all_restarted(
    sup: PID, before: dict[str, PID | None], ids: str
) -> dict[str, PID | None]:
    """Wait until every child is running and each of ``ids`` has a new PID."""

    async def restarted() -> dict[str, PID | None] | None:
        after = await pids(sup)
        if None in after.values() or any(after[n] == before[n] for n in ids):
            return None
        return after

    result: dict[str, PID | None] = await wait_until(
        restarted, timeout=2, what=f"children {ids} restarted"
    )
    return result


async def crash(sup: PID, child_id: str) -> PID | None:
    """Crash a running child with an exit signal; return its restarted PID (or None)."""
    old = (await pids(sup))[child_id]
    assert old is not None
    exit_process(old, "boom")
    return await wait_pid_change(sup, child_id, old)


# --------------------------------------------------------------------------- startup


class TestStartup:
    async def test_children_start_in_order_each_init_completing_before_the_next(self) -> None:
        log: list[Any] = []
        sup_cls = make_sup(lambda: [worker("a", log), worker("b", log), worker("c", log)])
        async with anyio.create_task_group() as tg:
            sup = await sup_cls.start(task_group=tg)
            assert log == [
                ("init", "a"),
                ("ready", "a"),
                ("init", "b"),
                ("ready", "b"),
                ("init", "c"),
                ("ready", "c"),
            ]
            assert list(await pids(sup)) == ["a", "b", "c"]
            tg.cancel_scope.cancel()

    async def test_which_children_lists_id_pid_type_and_class_in_start_order(self) -> None:
        log: list[Any] = []

        class Inner(Supervisor):
            pass

        def specs() -> list[ChildSpec]:
            return [worker("w", log), ChildSpec(id="s", actor_class=Inner)]

        async with anyio.create_task_group() as tg:
            sup = await make_sup(specs).start(task_group=tg)
            rows = await Supervisor.which_children(sup)
            assert all(isinstance(r, ChildInfo) for r in rows)
            assert [(r.id, r.type, r.actor_class) for r in rows] == [
                ("w", "worker", Worker),
                ("s", "supervisor", Inner),
            ]
            assert all(isinstance(r.pid, PID) and is_alive(r.pid) for r in rows)
            assert await call(rows[0].pid, "ping") == ("pong", "w")
            tg.cancel_scope.cancel()

    async def test_count_children_counts_specs_active_supervisors_and_workers(self) -> None:
        log: list[Any] = []

        class Inner(Supervisor):
            pass

        def specs() -> list[ChildSpec]:
            return [worker("a", log), worker("b", log), ChildSpec(id="s", actor_class=Inner)]

        async with anyio.create_task_group() as tg:
            sup = await make_sup(specs).start(task_group=tg)
            assert await Supervisor.count_children(sup) == {
                "specs": 3,
                "active": 3,
                "supervisors": 1,
                "workers": 2,
            }
            await Supervisor.terminate_child(sup, "a")
            counts = await Supervisor.count_children(sup)
            assert counts["specs"] == 3
            assert counts["active"] == 2
            tg.cancel_scope.cancel()

    async def test_a_child_whose_init_fails_makes_the_supervisor_start_raise_starterror(
        self,
    ) -> None:
        log: list[Any] = []

        class Broken(GenServer):
            async def init(self) -> None:
                raise ValueError("cannot start")

        def specs() -> list[ChildSpec]:
            return [worker("a", log), ChildSpec(id="broken", actor_class=Broken)]

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await make_sup(specs).start(task_group=tg)
            cause = info.value.__cause__
            assert isinstance(cause, StartError)
            assert isinstance(cause.__cause__, ValueError)
            # the child started before the failure was stopped again
            assert ("terminate", "a", "shutdown") in log
            assert processes() == []
            tg.cancel_scope.cancel()

    async def test_a_supervisor_can_be_started_by_name_and_addressed_by_it(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            await make_sup(lambda: [worker("a", log)]).start(task_group=tg, name="app")
            assert list(await pids("app")) == ["a"]
            tg.cancel_scope.cancel()

    async def test_start_arguments_reach_child_specs(self) -> None:
        class Sup(Supervisor):
            def child_specs(self, n: int, *, prefix: str) -> list[ChildSpec]:  # type: ignore[override]
                return [ChildSpec(id=f"{prefix}{i}", actor_class=Named) for i in range(n)]

        async with anyio.create_task_group() as tg:
            sup = await Sup.start(2, prefix="w", task_group=tg)
            assert [c.id for c in await Supervisor.which_children(sup)] == ["w0", "w1"]
            tg.cancel_scope.cancel()

    async def test_a_named_child_is_registered_and_takes_its_name_back_after_a_restart(
        self,
    ) -> None:
        class Sup(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="n", actor_class=Named, name="the-named-one")]

        async with anyio.create_task_group() as tg:
            await Sup.start(task_group=tg)
            first = whereis("the-named-one")
            assert first is not None
            assert await call("the-named-one", "where") == "here"
            exit_process(first, "kill")
            await wait_until(
                lambda: whereis("the-named-one") not in (None, first),
                timeout=2,
                what="the restarted child registered under the name",
            )
            assert await call("the-named-one", "where") == "here"
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- strategies


class TestStrategies:
    async def test_one_for_one_restarts_only_the_crashed_child(self) -> None:
        log: list[Any] = []
        sup_cls = make_sup(lambda: [worker("a", log), worker("b", log), worker("c", log)])
        async with anyio.create_task_group() as tg:
            sup = await sup_cls.start(task_group=tg)
            before = await pids(sup)
            new_b = await crash(sup, "b")
            after = await pids(sup)
            assert new_b is not None
            assert new_b != before["b"]
            assert after["a"] == before["a"]
            assert after["c"] == before["c"]
            assert await call(new_b, "ping") == ("pong", "b")
            tg.cancel_scope.cancel()

    async def test_one_for_all_stops_the_others_in_reverse_order_and_restarts_all(
        self,
    ) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abcd"]
        sup_cls = make_sup(lambda: specs, ONE_FOR_ALL)
        async with anyio.create_task_group() as tg:
            sup = await sup_cls.start(task_group=tg)
            before = await pids(sup)
            log.clear()
            await crash(sup, "b")
            after = await wait_all_restarted(sup, before, "abcd")
            assert all(after[n] != before[n] for n in "abcd")
            terminated = [e[1:] for e in log if e[0] == "terminate"]
            # b crashed; then the others were stopped, newest first
            assert terminated == [
                ("b", "boom"),
                ("d", "shutdown"),
                ("c", "shutdown"),
                ("a", "shutdown"),
            ]
            inits = [e[1] for e in log if e[0] == "init"]
            assert inits == ["a", "b", "c", "d"]
            tg.cancel_scope.cancel()

    async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it(
        self,
    ) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abcd"]
        sup_cls = make_sup(lambda: specs, REST_FOR_ONE)
        async with anyio.create_task_group() as tg:
            sup = await sup_cls.start(task_group=tg)
            before = await pids(sup)
            log.clear()
            await crash(sup, "b")
            after = await wait_all_restarted(sup, before, "bcd")
            assert after["a"] == before["a"]
            assert all(after[n] != before[n] for n in "bcd")
            terminated = [e[1:] for e in log if e[0] == "terminate"]
            assert terminated == [("b", "boom"), ("d", "shutdown"), ("c", "shutdown")]
            assert [e[1] for e in log if e[0] == "init"] == ["b", "c", "d"]
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("strategy", [ONE_FOR_ALL, REST_FOR_ONE])
    async def test_a_temporary_sibling_stopped_by_a_restart_is_not_restarted_but_forgotten(
        self, strategy: RestartStrategy
    ) -> None:
        # OTP: a temporary child is never restarted, "even when the supervisor's restart
        # strategy is rest_for_one or one_for_all and a sibling's death causes the
        # temporary process to be terminated".
        log: list[Any] = []
        specs = [worker("a", log), worker("t", log, restart=TEMPORARY), worker("b", log)]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, strategy).start(task_group=tg)
            before = await pids(sup)
            log.clear()
            await crash(sup, "a")
            await wait_gone(sup, "t")
            after = await pids(sup)
            assert list(after) == ["a", "b"]
            assert None not in after.values()
            assert after["b"] != before["b"]
            assert ("terminate", "t", "shutdown") in log
            assert ("init", "t") not in log
            assert not is_alive(before["t"])
            tg.cancel_scope.cancel()

    async def test_rest_for_one_on_the_last_child_restarts_only_it(self) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abc"]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, REST_FOR_ONE).start(task_group=tg)
            before = await pids(sup)
            await crash(sup, "c")
            after = await pids(sup)
            assert after["a"] == before["a"]
            assert after["b"] == before["b"]
            assert after["c"] not in (None, before["c"])
            tg.cancel_scope.cancel()

    async def test_a_restarted_child_can_register_the_name_its_predecessor_held(self) -> None:
        class Named(GenServer):
            async def init(self) -> None:
                assert register("the-service", self.pid)

            async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
                return self.pid, state

        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [ChildSpec(id="n", actor_class=Named)]).start(
                task_group=tg
            )
            old = whereis("the-service")
            new = await crash(sup, "n")
            assert new != old
            assert whereis("the-service") == new
            assert await call("the-service", "who") == new
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize(("signal", "reason"), [("kill", "killed"), ("boom", "boom")])
    async def test_a_child_killed_from_outside_is_restarted(self, signal: str, reason: str) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            old = (await pids(sup))["a"]
            assert old is not None
            down = watch_exit(old).reason
            exit_process(old, signal)
            assert await down() == reason
            assert await wait_pid_change(sup, "a", old) is not None
            tg.cancel_scope.cancel()

    async def test_a_crashing_handler_leaves_siblings_alone_and_is_restarted(self) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abc"]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs).start(task_group=tg)
            before = await pids(sup)
            with pytest.raises(CallExit, match="b crashed"):
                await call(before["b"], "crash")
            new_b = await wait_pid_change(sup, "b", before["b"])
            assert new_b is not None
            after = await pids(sup)
            assert (after["a"], after["c"]) == (before["a"], before["c"])
            assert await call(new_b, "ping") == ("pong", "b")
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- restart types


class TestRestartTypes:
    async def test_permanent_child_is_restarted_after_a_normal_exit(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log, restart=PERMANENT)]).start(task_group=tg)
            old = (await pids(sup))["a"]
            await cast(old, ("stop", "normal"))
            new = await wait_pid_change(sup, "a", old)
            assert new is not None
            assert is_alive(new)
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "bye")])
    async def test_transient_child_is_not_restarted_after_a_normal_exit(self, reason: Any) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log, restart=TRANSIENT)]).start(task_group=tg)
            old = (await pids(sup))["a"]
            await cast(old, ("stop", reason))
            # the supervisor restarts inside the same step that clears the PID, so a
            # None here is its final decision
            assert await wait_pid_change(sup, "a", old) is None
            assert await Supervisor.count_children(sup) == {
                "specs": 1,
                "active": 0,
                "supervisors": 0,
                "workers": 1,
            }
            tg.cancel_scope.cancel()

    async def test_transient_child_is_restarted_after_an_abnormal_exit(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log, restart=TRANSIENT)]).start(task_group=tg)
            new = await crash(sup, "a")
            assert new is not None
            assert is_alive(new)
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("how", ["normal", "crash"])
    async def test_temporary_child_is_never_restarted_and_is_forgotten(self, how: str) -> None:
        log: list[Any] = []
        specs = [worker("a", log), worker("t", log, restart=TEMPORARY)]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs).start(task_group=tg)
            before = await pids(sup)
            if how == "normal":
                await cast(before["t"], ("stop", "normal"))
            else:
                exit_process(before["t"], "boom")
            await wait_gone(sup, "t")
            assert await pids(sup) == {"a": before["a"]}
            assert (await Supervisor.count_children(sup))["specs"] == 1
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- intensity


class TestRestartIntensity:
    async def test_restarts_within_the_limit_keep_the_supervisor_running(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)], max_restarts=2).start(task_group=tg)
            await crash(sup, "a")
            await crash(sup, "a")
            assert is_alive(sup)
            tg.cancel_scope.cancel()

    async def test_exceeding_max_restarts_stops_all_children_and_exits_with_shutdown(
        self,
    ) -> None:
        log: list[Any] = []
        specs = [worker("a", log), worker("b", log)]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, max_restarts=2, max_seconds=5).start(task_group=tg)
            reason = watch_exit(sup).reason
            await crash(sup, "a")
            await crash(sup, "a")
            last = (await pids(sup))["a"]
            b = (await pids(sup))["b"]
            exit_process(last, "boom")
            assert await reason() == "shutdown"
            assert not is_alive(sup)
            assert not is_alive(b)
            assert ("terminate", "b", "shutdown") in log
            assert [p for p in processes() if p in (sup, last, b)] == []
            tg.cancel_scope.cancel()

    async def test_restarts_older_than_max_seconds_do_not_count(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(
                lambda: [worker("a", log)], max_restarts=1, max_seconds=0.05
            ).start(task_group=tg)
            await crash(sup, "a")
            # let the first restart leave the window (this sleep *is* the subject)
            await anyio.sleep(0.1)
            await crash(sup, "a")
            assert is_alive(sup)
            tg.cancel_scope.cancel()

    async def test_a_child_that_keeps_failing_to_restart_makes_the_supervisor_give_up(
        self,
    ) -> None:
        broken = {"init fails": False}

        class Fragile(GenServer):
            async def init(self) -> None:
                if broken["init fails"]:
                    raise RuntimeError("cannot come back")

        specs = [ChildSpec(id="f", actor_class=Fragile)]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, max_restarts=3).start(task_group=tg)
            reason = watch_exit(sup).reason
            broken["init fails"] = True
            exit_process((await pids(sup))["f"], "boom")
            assert await reason() == "shutdown"
            tg.cancel_scope.cancel()

    async def test_a_child_supervisor_that_gives_up_is_restarted_by_its_parent(self) -> None:
        log: list[Any] = []

        class Inner(Supervisor):
            max_restarts = 0

            def child_specs(self) -> list[ChildSpec]:
                return [worker("leaf", log)]

        async with anyio.create_task_group() as tg:
            outer = await make_sup(
                lambda: [worker("sibling", log), ChildSpec(id="inner", actor_class=Inner)]
            ).start(task_group=tg)
            before = await pids(outer)
            inner = before["inner"]
            assert inner is not None
            leaf = (await pids(inner))["leaf"]
            exit_process(leaf, "boom")
            new_inner = await wait_pid_change(outer, "inner", inner)
            assert new_inner is not None
            assert not is_alive(inner)
            new_leaf = (await pids(new_inner))["leaf"]
            assert new_leaf not in (None, leaf)
            assert (await pids(outer))["sibling"] == before["sibling"]
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- shutdown


class TestShutdown:
    async def test_children_stop_in_reverse_start_order_when_the_supervisor_stops(
        self,
    ) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abcd"]
        async with anyio.create_task_group() as tg:
            await make_sup(lambda: specs).start(task_group=tg)
            log.clear()
            tg.cancel_scope.cancel()
        assert log == [("terminate", n, "shutdown") for n in "dcba"]

    async def test_a_restarted_child_keeps_its_place_in_the_shutdown_order(self) -> None:
        log: list[Any] = []
        specs = [worker(n, log) for n in "abc"]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs).start(task_group=tg)
            await crash(sup, "a")
            log.clear()
            tg.cancel_scope.cancel()
        assert log == [("terminate", n, "shutdown") for n in "cba"]

    async def test_nested_supervisors_shut_down_top_down_and_depth_first(self) -> None:
        log: list[Any] = []

        class Inner(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [worker("i1", log), worker("i2", log)]

        specs = [worker("o1", log), ChildSpec(id="inner", actor_class=Inner), worker("o2", log)]
        async with anyio.create_task_group() as tg:
            await make_sup(lambda: specs).start(task_group=tg)
            log.clear()
            tg.cancel_scope.cancel()
        assert [e[1] for e in log] == ["o2", "i2", "i1", "o1"]

    async def test_a_child_that_ignores_shutdown_is_killed_after_its_timeout(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="anyotp")
        log: list[Any] = []

        class Stubborn(GenServer):
            async def terminate(self, reason: Any, state: Any) -> None:
                log.append(("stubborn terminate", reason))
                await anyio.sleep_forever()

        specs = [
            worker("a", log),
            ChildSpec(id="stubborn", actor_class=Stubborn, shutdown=0.2),
            worker("b", log),
        ]
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            await make_sup(lambda: specs).start(task_group=tg)
            log.clear()
            started = time.monotonic()
            tg.cancel_scope.cancel()
        elapsed = time.monotonic() - started
        assert 0.15 < elapsed < 2
        assert log == [
            ("terminate", "b", "shutdown"),
            ("stubborn terminate", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("did not stop within 0.2 s of shutdown; killing it" in m for m in warnings)

    async def test_brutal_kill_kills_at_once_without_terminate(self) -> None:
        log: list[Any] = []

        class Slow(GenServer):
            async def terminate(self, reason: Any, state: Any) -> None:
                log.append(("slow terminate", reason))
                await anyio.sleep_forever()

        specs = [
            ChildSpec(id="slow", actor_class=Slow, shutdown="brutal_kill"),
            worker("a", log, shutdown="brutal_kill"),
        ]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs).start(task_group=tg)
            slow = (await pids(sup))["slow"]
            reason = watch_exit(slow).reason
            log.clear()
            started = time.monotonic()
            await Supervisor.terminate_child(sup, "slow")
            assert await reason() == "killed"
            assert time.monotonic() - started < 1
            tg.cancel_scope.cancel()
        assert log == []  # neither terminate ran

    async def test_terminate_child_runs_terminate_with_shutdown(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            old = (await pids(sup))["a"]
            await Supervisor.terminate_child(sup, "a")
            assert log[-1] == ("terminate", "a", "shutdown")
            assert not is_alive(old)
            assert await pids(sup) == {"a": None}
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- runtime API


class TestRuntimeAPI:
    async def test_start_child_adds_and_starts_a_child_at_the_end(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            pid = await Supervisor.start_child(sup, worker("b", log))
            assert await pids(sup) == {"a": (await pids(sup))["a"], "b": pid}
            assert list(await pids(sup)) == ["a", "b"]
            assert await call(pid, "ping") == ("pong", "b")
            # and it is supervised like the others
            new = await crash(sup, "b")
            assert new not in (None, pid)
            tg.cancel_scope.cancel()

    async def test_start_child_with_a_duplicate_id_raises_supervisorerror(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            with pytest.raises(SupervisorError, match="'a' already exists"):
                await Supervisor.start_child(sup, worker("a", log))
            tg.cancel_scope.cancel()

    async def test_start_child_with_something_else_than_a_childspec_raises(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await make_sup(list).start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"takes a ChildSpec, got \{'id': 'x'\}"):
                await Supervisor.start_child(sup, {"id": "x"})
            tg.cancel_scope.cancel()

    async def test_start_child_whose_init_fails_raises_supervisorerror(self) -> None:
        class Broken(GenServer):
            async def init(self) -> None:
                raise ValueError("no")

        async with anyio.create_task_group() as tg:
            sup = await make_sup(list).start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"start_child\('broken'\) failed"):
                await Supervisor.start_child(sup, ChildSpec(id="broken", actor_class=Broken))
            assert await pids(sup) == {}
            tg.cancel_scope.cancel()

    async def test_restart_child_starts_a_terminated_child_again(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            old = (await pids(sup))["a"]
            await Supervisor.terminate_child(sup, "a")
            new = await Supervisor.restart_child(sup, "a")
            assert new != old
            assert await pids(sup) == {"a": new}
            tg.cancel_scope.cancel()

    async def test_restart_child_of_a_running_child_raises_supervisorerror(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"restart_child\('a'\).*running"):
                await Supervisor.restart_child(sup, "a")
            tg.cancel_scope.cancel()

    async def test_delete_child_of_a_running_child_raises_supervisorerror(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"delete_child\('a'\).*terminate_child"):
                await Supervisor.delete_child(sup, "a")
            tg.cancel_scope.cancel()

    async def test_delete_child_forgets_a_terminated_child(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log), worker("b", log)]).start(task_group=tg)
            await Supervisor.terminate_child(sup, "a")
            await Supervisor.delete_child(sup, "a")
            assert list(await pids(sup)) == ["b"]
            # the id is free again
            await Supervisor.start_child(sup, worker("a", log))
            assert list(await pids(sup)) == ["b", "a"]
            tg.cancel_scope.cancel()

    @pytest.mark.parametrize("op", ["terminate_child", "restart_child", "delete_child"])
    async def test_an_unknown_child_id_raises_supervisorerror_naming_it(self, op: str) -> None:
        async with anyio.create_task_group() as tg:
            sup = await make_sup(list).start(task_group=tg)
            with pytest.raises(SupervisorError, match=rf"{op}\(\): no child with id 'ghost'"):
                await getattr(Supervisor, op)(sup, "ghost")
            tg.cancel_scope.cancel()

    async def test_terminate_child_of_a_temporary_child_removes_it(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("t", log, restart=TEMPORARY)]).start(task_group=tg)
            await Supervisor.terminate_child(sup, "t")
            assert await pids(sup) == {}
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- child specs


class TestChildSpecValidation:
    @pytest.mark.parametrize("bad_id", ["", 3, None])
    def test_an_id_that_is_not_a_non_empty_str_is_rejected(self, bad_id: Any) -> None:
        with pytest.raises(SupervisorError, match=rf"non-empty str, got {bad_id!r}"):
            ChildSpec(id=bad_id, actor_class=Worker)

    @pytest.mark.parametrize(
        "bad_class",
        [pytest.param(lambda: None, id="function"), pytest.param(dict, id="not-a-process")],
    )
    def test_an_actor_class_that_is_not_a_process_class_is_rejected(self, bad_class: Any) -> None:
        with pytest.raises(SupervisorError, match=r"ChildSpec\(id='x'\): actor_class must be"):
            ChildSpec(id="x", actor_class=bad_class)

    def test_an_instance_instead_of_a_class_is_rejected_naming_it(self) -> None:
        instance = Worker()
        with pytest.raises(SupervisorError, match=r"not an instance\), got <Worker"):
            ChildSpec(id="x", actor_class=instance)

    @pytest.mark.parametrize("bad_args", [[1], "ab", 1])
    def test_args_that_are_not_a_tuple_are_rejected_naming_the_value(self, bad_args: Any) -> None:
        with pytest.raises(
            SupervisorError, match=re.escape(f"args must be a tuple, got {bad_args!r}")
        ):
            ChildSpec(id="x", actor_class=Worker, args=bad_args)

    def test_a_bad_shutdown_is_rejected(self) -> None:
        with pytest.raises(SupervisorError, match="shutdown must be"):
            ChildSpec(id="x", actor_class=Worker, shutdown=-1)

    def test_a_bad_restart_is_rejected(self) -> None:
        with pytest.raises(SupervisorError, match="restart must be a RestartType"):
            ChildSpec(id="x", actor_class=Worker, restart="permanent")

    def test_an_unknown_type_is_rejected_naming_the_value(self) -> None:
        with pytest.raises(SupervisorError, match=r"type must be 'worker' or 'supervisor'.*bogus"):
            ChildSpec(id="x", actor_class=Named, type="bogus")  # type: ignore[arg-type]

    def test_supervisorerror_is_a_valueerror(self) -> None:
        assert issubclass(SupervisorError, ValueError)

    def test_default_shutdown_is_five_seconds_for_workers_and_infinity_for_supervisors(
        self,
    ) -> None:
        assert ChildSpec(id="w", actor_class=Worker).shutdown_timeout == 5.0
        assert ChildSpec(id="s", actor_class=Supervisor).shutdown_timeout is None

    async def test_duplicate_ids_in_child_specs_make_start_fail_naming_the_id(self) -> None:
        log: list[Any] = []
        sup_cls = make_sup(lambda: [worker("a", log), worker("a", log)])
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await sup_cls.start(task_group=tg)
            cause = info.value.__cause__
            assert isinstance(cause, SupervisorError)
            assert "duplicate child id 'a'" in str(cause)
            assert log == []  # nothing was started
            tg.cancel_scope.cancel()

    async def test_child_specs_returning_a_non_childspec_makes_start_fail(self) -> None:
        sup_cls = make_sup(lambda: ["not a spec"])
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await sup_cls.start(task_group=tg)
            assert isinstance(info.value.__cause__, SupervisorError)
            assert "'not a spec'" in str(info.value.__cause__)
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- names


class FlakyRegistry:
    """A via-registry (``ViaRegistry``) whose ``register_name`` raises, as a dead
    registry does, while ``down`` is true or for the next ``fail_next`` attempts; it
    counts the attempts."""

    def __init__(self) -> None:
        self.names: dict[Any, PID] = {}
        self.down = False
        self.fail_next = 0
        self.attempts = 0

    def whereis_name(self, key: Any) -> PID | None:
        pid = self.names.get(key)
        return pid if pid is not None and is_alive(pid) else None

    def register_name(self, key: Any, pid: PID) -> bool:
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise NoProcess(f"the registry is restarting (register_name({key!r}))", key)
        if self.down:
            raise NoProcess(f"the registry is not alive (register_name({key!r}))", key)
        if self.whereis_name(key) is not None:
            return False
        self.names[key] = pid
        return True

    def unregister_name(self, key: Any) -> None:
        self.names.pop(key, None)


def named(child_id: str, log: list[Any], name: Any) -> ChildSpec:
    """A Worker child registered under ``name``."""
    return ChildSpec(id=child_id, actor_class=Worker, args=(child_id, log), name=name)


class TestChildNames:
    @pytest.mark.parametrize("name", [123, "", b"w", ["via", "reg", "w"], ("via", "reg")])
    def test_a_childspec_with_a_name_that_cannot_be_registered_raises_type_error(
        self, name: Any
    ) -> None:
        with pytest.raises(TypeError, match=r"ChildSpec\(id='w'\): name must be a non-empty str"):
            ChildSpec(id="w", actor_class=Worker, name=name)

    @pytest.mark.parametrize(
        "name", [None, "w", ("via", "reg", "w"), ("via", "reg", ("room", 1))], ids=repr
    )
    def test_a_childspec_takes_no_name_a_str_or_a_via_name(self, name: Any) -> None:
        assert ChildSpec(id="w", actor_class=Worker, name=name).name == name

    def test_a_childspec_takes_a_via_object(self) -> None:
        name = Via("reg", "w")
        assert ChildSpec(id="w", actor_class=Worker, name=name).name is name

    async def test_start_child_with_a_via_name_whose_registry_is_dead_raises_and_all_live_on(
        self,
    ) -> None:
        log: list[Any] = []
        registry = FlakyRegistry()
        registry.down = True
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            before = await pids(sup)
            spec = named("b", log, ("via", registry, "b"))
            with pytest.raises(
                SupervisorError, match=r"start_child\('b'\) failed: cannot start"
            ) as info:
                await Supervisor.start_child(sup, spec)
            assert isinstance(info.value.__cause__, StartError)
            assert is_alive(sup)
            assert await pids(sup) == before  # 'b' was not added; 'a' was not touched
            registry.down = False
            b = await Supervisor.start_child(sup, spec)
            assert registry.whereis_name("b") == b
            tg.cancel_scope.cancel()

    async def test_start_child_with_a_duplicate_registry_via_name_raises_supervisor_error(
        self,
    ) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            await Registry.start(keys="duplicate", task_group=tg, name="Dups")
            sup = await make_sup(lambda: [worker("a", log)]).start(task_group=tg)
            spec = named("b", log, ("via", "Dups", "b"))
            with pytest.raises(SupervisorError, match=r"via-names need a unique registry"):
                await Supervisor.start_child(sup, spec)
            assert is_alive(sup)
            assert [c.id for c in await Supervisor.which_children(sup)] == ["a"]
            tg.cancel_scope.cancel()

    async def test_restart_child_when_the_name_cannot_be_registered_raises_supervisor_error(
        self,
    ) -> None:
        log: list[Any] = []
        registry = FlakyRegistry()
        spec = named("a", log, ("via", registry, "a"))
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: [spec]).start(task_group=tg)
            await Supervisor.terminate_child(sup, "a")
            registry.down = True
            with pytest.raises(SupervisorError, match=r"restart_child\('a'\) failed"):
                await Supervisor.restart_child(sup, "a")
            assert is_alive(sup)
            tg.cancel_scope.cancel()

    async def test_a_restart_whose_name_cannot_be_registered_is_a_counted_failure_retried(
        self,
    ) -> None:
        log: list[Any] = []
        registry = FlakyRegistry()
        specs = [worker("a", log), named("b", log, Via(registry, "b"))]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, max_restarts=5).start(task_group=tg)
            before = await pids(sup)
            registry.fail_next = 2
            attempts = registry.attempts
            exit_process(before["b"], "kill")
            # The restart fails twice (the registry is restarting) and is tried again,
            # each try a counted restart (3 of the 5 allowed); the third try succeeds.
            await wait_until(
                lambda: registry.whereis_name("b") not in (None, before["b"]), what="b is back"
            )
            new_b = registry.whereis_name("b")
            assert registry.attempts == attempts + 3
            assert is_alive(sup)
            assert await pids(sup) == {"a": before["a"], "b": new_b}
            tg.cancel_scope.cancel()

    async def test_a_restart_that_can_never_register_its_name_makes_the_supervisor_give_up(
        self,
    ) -> None:
        log: list[Any] = []
        registry = FlakyRegistry()
        specs = [worker("a", log), named("b", log, Via(registry, "b"))]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, max_restarts=3).start(task_group=tg)
            reason = watch_exit(sup).reason
            registry.down = True
            exit_process((await pids(sup))["b"], "kill")
            # Not a crash with the registry's NoProcess: a restart failure, counted,
            # until the restart intensity is exceeded, as in OTP.
            assert await reason() == "shutdown"
            assert ("terminate", "a", "shutdown") in log
            tg.cancel_scope.cancel()

    async def test_a_worker_and_its_registry_dying_together_are_both_restarted(self) -> None:
        log: list[Any] = []
        specs = [
            ChildSpec(id="reg", actor_class=Registry, kwargs={"keys": "unique"}, name="Names"),
            worker("a", log),
            named("w", log, ("via", "Names", "w")),
        ]
        async with anyio.create_task_group() as tg:
            sup = await make_sup(lambda: specs, max_restarts=10).start(task_group=tg)
            before = await pids(sup)
            # Worker first: its EXIT is handled while the registry is dead (on asyncio).
            exit_process(before["w"], "kill")
            exit_process(before["reg"], "kill")

            def restarted() -> bool:
                w = whereis("Names")
                return w is not None and w != before["reg"] and bool(Registry.lookup(w, "w"))

            await wait_until(restarted, what="the registry and the worker are back")
            now = await pids(sup)
            assert is_alive(sup)
            assert now["a"] == before["a"]
            assert Registry.lookup("Names", "w") == [(now["w"], None)]
            tg.cancel_scope.cancel()
