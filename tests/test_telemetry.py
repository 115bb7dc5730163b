"""anyotp.telemetry: attach, detach, execute, span, and the events the runtime emits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from anyotp import (
    CallExit,
    CallTimeout,
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    RestartType,
    Supervisor,
    call,
    cast,
    exit_process,
    telemetry,
)
from anyotp.testing import wait_until

Record = tuple[tuple[str, ...], dict[str, Any], dict[str, Any], Any]


@pytest.fixture
def events() -> Iterator[list[Record]]:
    """Every runtime event, recorded while the test runs."""
    seen: list[Record] = []

    def record(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
        seen.append((event, measurements, metadata, config))

    telemetry.attach_many("test-recorder", telemetry.EVENTS, record)
    yield seen
    telemetry.detach("test-recorder")


@pytest.fixture(autouse=True)
def _no_handlers_left() -> Iterator[None]:
    yield
    left = telemetry.list_handlers()
    for info in left:
        telemetry.detach(info.id)
    assert left == []


def of(events: list[Record], event: tuple[str, ...]) -> list[Record]:
    return [e for e in events if e[0] == event]


class TestAttach:
    def test_an_attached_handler_receives_event_measurements_metadata_and_config(self) -> None:
        got: list[Any] = []
        telemetry.attach("h", ("app", "x"), lambda *a: got.append(a), config={"k": 1})
        telemetry.execute(("app", "x"), {"n": 1}, {"who": "me"})
        telemetry.detach("h")
        assert got == [(("app", "x"), {"n": 1}, {"who": "me"}, {"k": 1})]

    def test_a_handler_only_receives_the_events_it_is_attached_to(self) -> None:
        got: list[Any] = []
        telemetry.attach("h", ("app", "x"), lambda *a: got.append(a[0]))
        telemetry.execute(("app", "y"), {})
        telemetry.execute(("app", "x"), {})
        telemetry.detach("h")
        assert got == [("app", "x")]

    def test_attach_many_attaches_one_handler_to_several_events(self) -> None:
        got: list[Any] = []
        telemetry.attach_many("h", [("a",), ("b",)], lambda *a: got.append(a[0]))
        telemetry.execute(("a",), {})
        telemetry.execute(("b",), {})
        telemetry.detach("h")
        assert got == [("a",), ("b",)]

    def test_attaching_the_same_id_twice_raises(self) -> None:
        telemetry.attach("h", ("a",), lambda *a: None)
        with pytest.raises(ValueError, match=r"'h'.*already attached.*detach"):
            telemetry.attach("h", ("b",), lambda *a: None)
        telemetry.detach("h")

    def test_an_event_that_is_not_a_tuple_of_str_raises(self) -> None:
        with pytest.raises(TypeError, match=r"tuple of str.*got 'anyotp.call.stop'"):
            telemetry.attach("h", "anyotp.call.stop", lambda *a: None)  # type: ignore[arg-type]

    def test_a_handler_that_is_not_callable_raises(self) -> None:
        with pytest.raises(TypeError, match="must be callable"):
            telemetry.attach("h", ("a",), 42)  # type: ignore[arg-type]

    def test_detach_returns_whether_the_handler_was_attached(self) -> None:
        telemetry.attach("h", ("a",), lambda *a: None)
        assert telemetry.detach("h") is True
        assert telemetry.detach("h") is False

    def test_list_handlers_filters_by_event_prefix(self) -> None:
        telemetry.attach("calls", telemetry.CALL_STOP, lambda *a: None)
        telemetry.attach("app", ("app", "x"), lambda *a: None)
        assert [h.id for h in telemetry.list_handlers(("anyotp",))] == ["calls"]
        assert sorted(h.id for h in telemetry.list_handlers()) == ["app", "calls"]
        telemetry.detach("calls")
        telemetry.detach("app")

    def test_telemetry_is_disabled_when_nothing_is_attached(self) -> None:
        from anyotp import _telemetry

        assert _telemetry.enabled is False
        telemetry.attach("h", ("a",), lambda *a: None)
        assert _telemetry.enabled is True
        telemetry.detach("h")
        assert _telemetry.enabled is False


class TestHandlerFailure:
    def test_a_handler_that_raises_is_detached_and_logged_and_others_still_run(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        got: list[Any] = []

        def bad(*_: Any) -> None:
            raise RuntimeError("handler bug")

        telemetry.attach("bad", ("a",), bad)
        telemetry.attach("good", ("a",), lambda *a: got.append(a[0]))
        with caplog.at_level(logging.ERROR, logger="anyotp.telemetry"):
            telemetry.execute(("a",), {})  # does not raise
            telemetry.execute(("a",), {})
        telemetry.detach("good")
        assert got == [("a",), ("a",)]
        assert [h.id for h in telemetry.list_handlers()] == []
        assert len(caplog.records) == 1
        assert "'bad' raised on event ('a',) and was detached" in caplog.records[0].getMessage()


class TestSpan:
    def test_span_emits_start_and_stop_with_a_duration(self, events: list[Record]) -> None:
        telemetry.attach_many("s", [("job", "start"), ("job", "stop")], events_append(events))
        with telemetry.span(("job",), {"id": 7}) as meta:
            meta["rows"] = 3
        telemetry.detach("s")
        (start, stop) = of(events, ("job", "start")) + of(events, ("job", "stop"))
        assert start[2] == {"id": 7, "rows": 3}  # the same dict: the block may add keys
        assert "system_time" in start[1]
        assert stop[1]["duration"] >= 0
        assert stop[2]["rows"] == 3

    def test_span_emits_exception_and_reraises(self, events: list[Record]) -> None:
        telemetry.attach("s", ("job", "exception"), events_append(events))
        with pytest.raises(KeyError, match="gone"), telemetry.span(("job",)):
            raise KeyError("gone")
        telemetry.detach("s")
        [(_, measurements, meta, _)] = of(events, ("job", "exception"))
        assert measurements["duration"] >= 0
        assert meta["kind"] == "KeyError"
        assert isinstance(meta["reason"], KeyError)
        assert meta["stacktrace"] is not None


def events_append(events: list[Record]) -> Any:
    return lambda *a: events.append(a)


class Echo(GenServer):
    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case "crash":
                raise RuntimeError("boom")
            case "slow":
                await anyio.sleep(1)
        return request, state

    async def handle_cast(self, request: Any, state: Any) -> Any:
        await anyio.sleep(0.5)
        return state


class Sup(Supervisor):
    max_restarts = 1

    def child_specs(self) -> list[ChildSpec]:
        return [ChildSpec(id="echo", actor_class=Echo)]


@pytest.mark.anyio
class TestRuntimeEvents:
    async def test_spawn_and_exit_are_emitted_for_every_process(self, events: list[Record]) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            tg.cancel_scope.cancel()
        [(_, m, spawn, _)] = of(events, telemetry.PROCESS_SPAWN)
        assert spawn == {"pid": pid, "class": "Echo", "name": None, "parent": None}
        assert m["system_time"] > 0
        [(_, _, exit_, _)] = of(events, telemetry.PROCESS_EXIT)
        assert exit_["pid"] == pid
        assert exit_["reason"] == "shutdown"

    async def test_call_emits_start_and_stop_with_its_duration(self, events: list[Record]) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            assert await call(pid, "hi") == "hi"
            tg.cancel_scope.cancel()
        [(_, _, start, _)] = of(events, telemetry.CALL_START)
        assert start == {"server": pid, "request": "hi"}
        [(_, m, stop, _)] = of(events, telemetry.CALL_STOP)
        assert stop == {"server": pid, "request": "hi"}
        assert 0 <= m["duration"] < 1

    async def test_a_call_that_times_out_emits_exception_with_reason_timeout(
        self, events: list[Record]
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            with pytest.raises(CallTimeout, match="timed out"):
                await call(pid, "slow", timeout=0.01)
            tg.cancel_scope.cancel()
        [(_, m, meta, _)] = of(events, telemetry.CALL_EXCEPTION)
        assert meta["reason"] == "timeout"
        assert m["duration"] >= 0.01
        assert of(events, telemetry.CALL_STOP) == []

    async def test_a_crash_emits_crash_with_the_exception_and_restart_from_the_supervisor(
        self, events: list[Record]
    ) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Sup.start(task_group=tg)
            [child] = await Supervisor.which_children(sup)
            with pytest.raises(CallExit, match="boom"):
                await call(child.pid, "crash")
            await wait_until(lambda: of(events, telemetry.SUPERVISOR_RESTART) != [])
            tg.cancel_scope.cancel()
        [(_, _, crash, _)] = of(events, telemetry.PROCESS_CRASH)
        assert crash["pid"] == child.pid
        assert crash["parent"] == sup
        assert isinstance(crash["reason"], RuntimeError)
        assert crash["stacktrace"] is not None
        [(_, _, restart, _)] = of(events, telemetry.SUPERVISOR_RESTART)
        assert restart["supervisor"] == sup
        assert restart["child_id"] == "echo"
        assert restart["pid"] == child.pid
        assert isinstance(restart["reason"], RuntimeError)

    async def test_exceeding_the_restart_intensity_emits_supervisor_shutdown(
        self, events: list[Record]
    ) -> None:
        async with anyio.create_task_group() as tg:
            sup = await Sup.start(task_group=tg)
            kills = 0
            while not of(events, telemetry.SUPERVISOR_SHUTDOWN):
                [child] = await Supervisor.which_children(sup)
                assert child.pid is not None
                exit_process(child.pid, "kill")
                kills += 1
                await wait_until(lambda n=kills: len(of(events, telemetry.SUPERVISOR_RESTART)) == n)
            tg.cancel_scope.cancel()
        [(_, m, meta, _)] = of(events, telemetry.SUPERVISOR_SHUTDOWN)
        assert meta == {"supervisor": sup, "class": "Sup", "max_restarts": 1, "max_seconds": 5.0}
        assert m["restarts"] == 2

    async def test_a_dynamic_supervisor_emits_restart(self, events: list[Record]) -> None:
        async with anyio.create_task_group() as tg:
            sup = await DynamicSupervisor.start(task_group=tg)
            pid = await DynamicSupervisor.start_child(
                sup, ChildSpec(id="e", actor_class=Echo, restart=RestartType.PERMANENT)
            )
            exit_process(pid, "kill")
            await wait_until(lambda: of(events, telemetry.SUPERVISOR_RESTART) != [])
            tg.cancel_scope.cancel()
        [(_, _, restart, _)] = of(events, telemetry.SUPERVISOR_RESTART)
        assert restart["pid"] == pid
        assert restart["reason"] == "killed"

    async def test_sample_mailboxes_emits_each_process_mailbox_length(
        self, events: list[Record]
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            for _ in range(3):
                await cast(pid, "wait")  # the first is being handled, two wait

            def sampled() -> list[Record]:
                assert telemetry.sample_mailboxes() == 1
                return [e for e in of(events, telemetry.MAILBOX_SAMPLE) if e[1]["length"] == 2]

            samples = await wait_until(sampled)
            tg.cancel_scope.cancel()
        assert samples[-1][2] == {"pid": pid, "class": "Echo", "name": None}

    async def test_sample_mailboxes_does_nothing_when_nothing_is_attached(self) -> None:
        async with anyio.create_task_group() as tg:
            await Echo.start(task_group=tg)
            assert telemetry.sample_mailboxes() == 0
            tg.cancel_scope.cancel()


class TestLayering:
    def test_the_telemetry_module_imports_only_the_standard_library(self) -> None:
        import ast
        import sys
        from pathlib import Path

        from anyotp import _telemetry

        tree = ast.parse(Path(_telemetry.__file__).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "_telemetry sits below _core: no relative imports"
                imported.add((node.module or "").split(".")[0])
        assert imported <= set(sys.stdlib_module_names) | {"__future__"}

    def test_the_core_emits_through_the_low_level_module_only(self) -> None:
        from pathlib import Path

        import anyotp

        src = Path(anyotp.__file__).parent
        for path in [*src.glob("_*.py"), *(src / "_core").glob("*.py")]:
            assert "import telemetry" not in path.read_text(), path.name
