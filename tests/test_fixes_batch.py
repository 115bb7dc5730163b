"""Behaviours fixed after review: each test names the rule it pins down."""

from __future__ import annotations

from typing import Any, NamedTuple

import anyio
import pytest

from anyotp import (
    ANY,
    PID,
    Agent,
    ChildSpec,
    From,
    GenServer,
    NoReply,
    StartError,
    Stop,
    Supervisor,
    SupervisorError,
    call,
    exit_process,
    get_state,
    match,
    whereis,
)

pytestmark = pytest.mark.anyio


class Parent(GenServer):
    async def init(self, ended: anyio.Event) -> Any:
        self.ended = ended
        return None

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        pid = await self.spawn_task(anyio.sleep_forever)
        return pid, state

    async def handle_task_end(self, child_pid: PID, status: str, result: Any, state: Any) -> Any:
        self.ended.set()
        return (status, type(result).__name__, getattr(result, "reason", None))


class TestTasks:
    async def test_a_killed_task_still_reaches_handle_task_end_as_a_failure(self) -> None:
        ended = anyio.Event()
        async with anyio.create_task_group() as tg:
            parent = await Parent.start(ended, task_group=tg)
            task = await call(parent, "spawn")
            exit_process(task, "kill")
            with anyio.fail_after(2):
                await ended.wait()
            assert await get_state(parent) == ("failure", "ExitError", "killed")
            tg.cancel_scope.cancel()


class Named(GenServer):
    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        return "here", state


class TestChildSpec:
    def test_an_unknown_type_is_rejected_naming_the_value(self) -> None:
        with pytest.raises(SupervisorError, match=r"type must be 'worker' or 'supervisor'.*bogus"):
            ChildSpec(id="x", actor_class=Named, type="bogus")  # type: ignore[arg-type]

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
            with anyio.fail_after(2):
                while whereis("the-named-one") in (None, first):
                    await anyio.sleep(0.005)
            assert await call("the-named-one", "where") == "here"
            tg.cancel_scope.cancel()


class TestSupervisorArgs:
    async def test_start_arguments_reach_child_specs(self) -> None:
        class Sup(Supervisor):
            def child_specs(self, n: int, *, prefix: str) -> list[ChildSpec]:  # type: ignore[override]
                return [ChildSpec(id=f"{prefix}{i}", actor_class=Named) for i in range(n)]

        async with anyio.create_task_group() as tg:
            sup = await Sup.start(2, prefix="w", task_group=tg)
            assert [c.id for c in await Supervisor.which_children(sup)] == ["w0", "w1"]
            tg.cancel_scope.cancel()


class TestInitStop:
    async def test_init_returning_stop_makes_start_fail_without_terminate(self) -> None:
        terminated: list[Any] = []

        class Refuses(GenServer):
            async def init(self) -> Any:
                return Stop("not_today")

            async def terminate(self, reason: Any, state: Any) -> None:
                terminated.append(reason)

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError) as info:
                await Refuses.start(task_group=tg)
        assert info.value.reason == "not_today"
        assert terminated == []


class TestIdleTimeoutAndSystemMessages:
    async def test_get_state_does_not_cancel_a_pending_idle_timeout(self) -> None:
        fired = anyio.Event()

        class Idle(GenServer):
            async def init(self) -> Any:
                return NoReply("waiting", 0.05)

            async def handle_info(self, message: Any, state: Any) -> Any:
                fired.set()
                return message

        async with anyio.create_task_group() as tg:
            pid = await Idle.start(task_group=tg)
            assert await get_state(pid) == "waiting"
            with anyio.fail_after(2):
                await fired.wait()
            assert await get_state(pid) == "timeout"
            tg.cancel_scope.cancel()


class TestAgentCast:
    async def test_agent_cast_can_be_awaited_like_anyotp_cast(self) -> None:
        async with anyio.create_task_group() as tg:
            agent = await Agent.start(lambda: 1, task_group=tg)
            await Agent.cast(agent, lambda v: v + 1)
            assert await Agent.get(agent, lambda v: v) == 2
            tg.cancel_scope.cancel()


class Point(NamedTuple):
    x: int
    y: int


class TestNamedTuplePatterns:
    def test_a_namedtuple_pattern_matches_its_class_element_wise(self) -> None:
        assert match(Point(ANY, 0), Point(5, 0)) == (5,)
        assert match(Point(ANY, 0), Point(5, 1)) is None

    def test_a_namedtuple_pattern_does_not_match_a_plain_tuple(self) -> None:
        assert match(Point(ANY, 0), (5, 0)) is None

    def test_a_namedtuple_nested_in_a_tuple_pattern_is_structural_too(self) -> None:
        assert match(("at", Point(ANY, ANY)), ("at", Point(1, 2))) == (1, 2)
