"""Supervisor.start_link([children...], strategy=...): supervisors without a subclass."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from anyotp import (
    Actor,
    ChildSpec,
    GenServer,
    RestartStrategy,
    RestartType,
    StartError,
    Supervisor,
    SupervisorError,
    call,
    exit_process,
    is_alive,
    monitor,
    receive,
    whereis,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Worker(GenServer):
    async def init(self, tag: Any = None) -> Any:
        return tag

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return state, state


class Described(GenServer):
    """Describes itself with child_spec, as an Elixir module does."""

    @classmethod
    def child_spec(cls, arg: Any = "default") -> ChildSpec:
        return ChildSpec(
            id=f"described-{arg}", actor_class=cls, args=(arg,), restart=RestartType.TRANSIENT
        )

    async def init(self, arg: Any) -> Any:
        return arg

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return state, state


class App(Supervisor):
    strategy = RestartStrategy.ONE_FOR_ALL

    def child_specs(self, tags: list[str]) -> list[ChildSpec]:
        return [ChildSpec(id=t, actor_class=Worker, args=(t,)) for t in tags]


def ids(rows: list[Any]) -> list[str]:
    return [r.id for r in rows]


class TestChildrenList:
    async def test_a_class_a_pair_and_a_childspec_become_children_in_order(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start(
                [Worker, (Described, 7), ChildSpec(id="named", actor_class=Worker, args=("n",))],
                task_group=tg,
            )
            rows = await Supervisor.which_children(sup)
            assert ids(rows) == ["Worker", "described-7", "named"]
            assert await call(rows[1].pid, "get") == 7
            assert await call(rows[2].pid, "get") == "n"
            await Supervisor.stop(sup)

    async def test_a_bare_class_with_child_spec_is_described_without_an_argument(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start([Described], task_group=tg)
            (row,) = await Supervisor.which_children(sup)
            assert row.id == "described-default"
            await Supervisor.stop(sup)

    async def test_the_strategy_and_limits_are_options(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start(
                [(Worker, "a"), ChildSpec(id="b", actor_class=Worker, args=("b",))],
                strategy=RestartStrategy.ONE_FOR_ALL,
                max_restarts=5,
                max_seconds=1.0,
                task_group=tg,
                name="sup",
            )
            assert whereis("sup") == sup
            before = await Supervisor.which_children(sup)
            exit_process(before[0].pid, "kill")  # one_for_all: both restart

            async def both_restarted() -> bool:
                rows = await Supervisor.which_children(sup)
                return all(
                    r.pid is not None and r.pid != b.pid for r, b in zip(rows, before, strict=True)
                )

            await wait_until(both_restarted)
            await Supervisor.stop(sup)

    async def test_start_link_links_the_supervisor_to_the_caller(self) -> None:
        class Caller(Actor):
            trap_exit = True

            async def init(self, box: dict[str, Any], ready: anyio.Event) -> Any:
                box["sup"] = await Supervisor.start_link([Worker], task_group=self.children)
                ref = monitor(box["sup"])
                ready.set()
                return ref

            async def run(self, ref: Any) -> Any:
                await receive("never")

        box: dict[str, Any] = {}
        ready = anyio.Event()
        async with anyio.create_task_group() as tg:
            caller = await Caller.start(box, ready, task_group=tg)
            await ready.wait()
            sup = box["sup"]
            exit_process(caller, "kill")
            await wait_until(lambda: not is_alive(sup))

    async def test_a_child_that_is_not_a_class_a_pair_or_a_spec_raises_supervisorerror(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(SupervisorError, match=r"got str 'worker'"):
                await Supervisor.start(["worker"], task_group=tg)

    async def test_bad_options_raise(self) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(SupervisorError, match=r"strategy='one_for_one'"):
                await Supervisor.start([Worker], strategy="one_for_one", task_group=tg)
            with pytest.raises(SupervisorError, match=r"max_restarts=-1"):
                await Supervisor.start([Worker], max_restarts=-1, task_group=tg)
            with pytest.raises(TypeError, match=r"unknown option\(s\) intensity"):
                await Supervisor.start([Worker], intensity=3, task_group=tg)
            with pytest.raises(TypeError, match=r"takes a list of children"):
                await Supervisor.start(Worker, task_group=tg)

    async def test_duplicate_ids_fail_the_start(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.CRITICAL, logger="anyotp")
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match=r"duplicate child id 'Worker'"):
                await Supervisor.start([Worker, Worker], task_group=tg)


class TestSubclassFormStillWorks:
    async def test_a_subclass_gets_its_start_arguments_in_child_specs_even_a_list(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            sup = await App.start(["x", "y"], task_group=tg)
            assert ids(await Supervisor.which_children(sup)) == ["x", "y"]
            await Supervisor.stop(sup)

    async def test_the_base_supervisor_without_arguments_starts_empty(self) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Supervisor.start(task_group=tg)
            assert await Supervisor.which_children(sup) == []
            await Supervisor.stop(sup)
