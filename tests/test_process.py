"""Processes: start, exit reasons, links, monitors, trap_exit, kill, ownership, calls.

Most tests run their steps inside a process (``in_actor``) so that they can link,
monitor and receive like any other process; they wait on ``DOWN`` messages and
replies, never on fixed sleeps.
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import anyotp
from _helpers import drain, in_actor
from anyotp import (
    ANY,
    IGNORE,
    PID,
    Actor,
    CallError,
    CallExit,
    CallNoProc,
    CallTimeout,
    ChildSpec,
    GenServer,
    NoProcess,
    NoReply,
    NotInProcess,
    ReceiveTimeout,
    RestartStrategy,
    StartError,
    Supervisor,
    Task,
    call,
    cast,
    cast_nowait,
    demonitor,
    exit_process,
    is_alive,
    link,
    monitor,
    processes,
    self_pid,
    send,
    send_nowait,
    unlink,
)
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio

# --------------------------------------------------------------------------- helpers


async def ping_loop_turns(n: int) -> None:
    """Let the event loop run ``n`` turns (other tasks get to act meanwhile)."""
    for _ in range(n):
        await anyio.lowlevel.checkpoint()


class Worker(Actor):
    """A process the tests poke with messages.

    * ``("crash", exc)`` raises ``exc``; ``("stop", reason)`` stops with ``reason``;
    * ``("ping", pid)`` answers ``("pong", self.pid)``;
    * anything else is forwarded to ``report_to`` as ``(tag, message)``.

    ``terminate`` appends ``(tag, reason)`` to ``log``.
    """

    async def init(
        self,
        tag: str = "worker",
        log: list[Any] | None = None,
        report_to: PID | None = None,
        trap: bool = False,
        link_to: PID | None = None,
    ) -> None:
        self.tag = tag
        self.log = log if log is not None else []
        self.report_to = report_to
        self.trap_exit = trap
        if link_to is not None:
            link(link_to)

    async def run(self, state: Any) -> Any:
        return await self.receive(
            (("crash", BaseException), self._crash),
            (("stop", ANY), self.stop),
            (("ping", PID), self._pong),
            (ANY, self._forward),
        )

    def _crash(self, exc: BaseException) -> None:
        raise exc

    def _pong(self, sender: PID) -> None:
        send_nowait(sender, ("pong", self.pid))

    def _forward(self, message: Any) -> None:
        if self.report_to is not None:
            send_nowait(self.report_to, (self.tag, message))

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append((self.tag, reason))


async def down(me: Actor, ref: anyotp.Ref, timeout: float = 2.0) -> Any:
    """The reason of the DOWN message for monitor ``ref``."""
    return await me.receive((("DOWN", ref, "process", IGNORE, ANY), lambda r: r), timeout=timeout)


async def ping(me: Actor, pid: PID) -> bool:
    """True once ``pid`` answered a ping (it is alive and serving messages)."""
    send_nowait(pid, ("ping", me.pid))
    return bool(await me.receive((("pong", pid), lambda: True), timeout=2.0))


async def dead_pid(me: Actor, tg: anyio.abc.TaskGroup) -> PID:
    pid = await Worker.start(task_group=tg)
    ref = monitor(pid)
    send_nowait(pid, ("stop", "normal"))
    assert await down(me, ref) == "normal"
    return pid


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("anyotp") and r.levelno >= logging.ERROR]


class Boom(Exception):
    pass


# ------------------------------------------------------------------------------ start


class TestStart:
    async def test_start_waits_for_init_and_passes_it_args_and_kwargs(self) -> None:
        seen: list[Any] = []

        class Slow(Actor):
            async def init(self, a: int, b: int, *, c: int) -> None:
                for _ in range(10):
                    await anyio.lowlevel.checkpoint()
                seen.append((a, b, c))

            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            pid = await Slow.start(1, 2, c=3, task_group=tg)
            assert seen == [(1, 2, 3)]
            assert is_alive(pid)
            assert pid in processes()
            tg.cancel_scope.cancel()

    async def test_init_raising_makes_start_raise_StartError_chained_to_the_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        error = Boom("no config")

        class Failing(Actor):
            async def init(self) -> None:
                raise error

        before = processes()
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match=r"Failing failed to start.*no config") as info:
                await Failing.start(task_group=tg)
        assert info.value.__cause__ is error
        assert info.value.reason is error
        assert processes() == before
        assert error_records(caplog) == []  # the starter reports it, not the log

    async def test_init_calling_stop_makes_start_raise_StartError_with_that_reason(self) -> None:
        class Refusing(Actor):
            async def init(self) -> None:
                self.stop("ignore")

        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match="'ignore'") as info:
                await Refusing.start(task_group=tg)
        assert info.value.reason == "ignore"

    async def test_start_without_a_task_group_raises_TypeError_naming_the_fix(self) -> None:
        with pytest.raises(
            TypeError, match=r"Worker.start\(\) needs task_group=.*create_task_group"
        ):
            await Worker.start()

    async def test_start_with_something_else_than_a_task_group_raises_TypeError(self) -> None:
        with pytest.raises(TypeError, match=r"takes an anyio TaskGroup, got str 'tg'"):
            await Worker.start(task_group="tg")

    async def test_init_s_return_value_is_the_first_state_run_gets(self) -> None:
        states: list[Any] = []

        class Counter(Actor):
            async def init(self, start: int) -> int:
                return start

            async def run(self, state: int) -> int:
                states.append(state)
                if state == 3:
                    self.stop()
                return state + 1

        async with anyio.create_task_group() as tg:
            pid = await Counter.start(1, task_group=tg)
            await wait_until(lambda: not is_alive(pid), timeout=2, what="the exit")
        assert states == [1, 2, 3]


# -------------------------------------------------------------------------------- PID


class TestPID:
    def test_PID_has_no_public_constructor(self) -> None:
        with pytest.raises(TypeError, match="no public constructor"):
            PID()
        with pytest.raises(TypeError, match="no public constructor"):
            PID("node", 1)

    async def test_a_PID_repr_shows_its_number(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Worker.start(task_group=tg)
            assert re.fullmatch(r"<PID 0\.\d+>", repr(pid))
            assert repr(pid) == f"<PID 0.{pid.id}>"
            tg.cancel_scope.cancel()

    async def test_PIDs_are_hashable_and_equal_only_for_the_same_process(self) -> None:
        async with anyio.create_task_group() as tg:
            a = await Worker.start(task_group=tg)
            b = await Worker.start(task_group=tg)
            assert a != b
            assert {a: 1, b: 2}[a] == 1
            assert pickle.loads(pickle.dumps(a)) == a
            assert a.is_local
            tg.cancel_scope.cancel()

    async def test_a_PID_stays_valid_but_not_alive_after_its_process_exits(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            return pid, is_alive(pid), pid in processes()

        pid, alive, listed = await in_actor(body)
        assert (alive, listed) == (False, False)
        assert pid == pid


class TestSelfPid:
    async def test_self_pid_is_the_pid_of_the_calling_process(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            return self_pid() == me.pid

        assert await in_actor(body) is True

    async def test_self_pid_in_init_is_the_new_process_s_pid(self) -> None:
        seen: list[PID] = []

        class Recorder(Worker):
            async def init(self) -> None:
                seen.append(self_pid())

        async with anyio.create_task_group() as tg:
            pid = await Recorder.start(task_group=tg)
            assert seen == [pid]
            tg.cancel_scope.cancel()

    async def test_self_pid_in_a_child_task_is_the_owning_process_s_pid(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            def report() -> None:
                send_nowait(me.pid, ("child sees", self_pid()))

            me.start_soon_child(report)
            return await me.receive((("child sees", PID), lambda p: p == me.pid), timeout=2)

        assert await in_actor(body) is True

    async def test_self_pid_outside_any_process_raises_NotInProcess(self) -> None:
        with pytest.raises(NotInProcess, match=r"self_pid\(\) was called outside any process"):
            self_pid()
        assert issubclass(NotInProcess, RuntimeError)


# ----------------------------------------------------------------------- exit reasons


class _RecordingTaskGroup:
    """A task group wrapper that records how each task it runs ends."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self.endings: list[Any] = []

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: Any = None) -> None:
        async def watched() -> None:
            try:
                await fn(*args)
            except anyio.get_cancelled_exc_class():
                self.endings.append("cancelled")
                raise
            except BaseException as e:
                self.endings.append(e)
                raise
            self.endings.append("returned")

        self._tg.start_soon(watched, name=name)


class TestExitReasons:
    async def test_stop_without_a_reason_exits_with_normal(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(log=log, task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "normal"))
            return await down(me, ref), log

        assert await in_actor(body) == ("normal", [("worker", "normal")])

    async def test_stop_called_with_no_argument_means_normal(self) -> None:
        class Quitter(Actor):
            async def run(self, state: Any) -> Any:
                await self.receive(("go", lambda: None))
                self.stop()

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Quitter.start(task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, "go")
            return await down(me, ref)

        assert await in_actor(body) == "normal"

    async def test_stop_with_a_custom_reason_exits_with_that_reason(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(log=log, task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "custom"))
            return await down(me, ref), log

        assert await in_actor(body) == ("custom", [("worker", "custom")])

    async def test_a_crash_exits_with_the_exception_instance_as_the_reason(self) -> None:
        error = Boom("crash")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(log=log, task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("crash", error))
            return await down(me, ref), log

        reason, log = await in_actor(body)
        assert reason is error
        assert log == [("worker", error)]

    async def test_a_crash_is_logged_once_at_ERROR_with_its_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        error = Boom("logged once")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("crash", error))
            await down(me, ref)
            return pid

        with caplog.at_level(logging.ERROR, logger="anyotp"):
            pid = await in_actor(body)
        (record,) = error_records(caplog)
        assert record.exc_info is not None
        assert record.exc_info[1] is error
        assert record.exc_info[2] is not None  # the traceback
        assert repr(pid) in record.getMessage()
        assert "logged once" in record.getMessage()

    async def test_cancelling_the_task_group_calls_terminate_with_shutdown(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            await Worker.start(log=log, task_group=tg)
            tg.cancel_scope.cancel()
        assert log == [("worker", "shutdown")]

    async def test_cancellation_still_propagates_out_of_the_process_s_task(self) -> None:
        log: list[Any] = []
        async with anyio.create_task_group() as tg:
            recording = _RecordingTaskGroup(tg)
            await Worker.start(log=log, task_group=recording)
            tg.cancel_scope.cancel()
        assert log == [("worker", "shutdown")]
        assert recording.endings == ["cancelled"]

    async def test_an_outer_cancel_scope_ends_the_processes_and_the_task_group(self) -> None:
        log: list[Any] = []
        with anyio.CancelScope() as outer:
            async with anyio.create_task_group() as tg:
                await Worker.start(log=log, task_group=tg)
                outer.cancel()
                await anyio.sleep_forever()
        assert outer.cancelled_caught
        assert log == [("worker", "shutdown")]
        assert processes() == []

    async def test_a_crash_or_a_stop_does_not_disturb_the_task_group(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            recording = _RecordingTaskGroup(tg)
            crasher = await Worker.start(task_group=recording)
            stopper = await Worker.start(task_group=recording)
            refs = monitor(crasher), monitor(stopper)
            send_nowait(crasher, ("crash", Boom("quiet")))
            send_nowait(stopper, ("stop", "custom"))
            for ref in refs:
                await down(me, ref)
            # processes may share one task of the group (asyncio): wait for its end
            await wait_until(lambda: recording.endings, what="the group's tasks to end")
            return recording.endings

        endings = await in_actor(body)
        assert endings
        assert set(endings) == {"returned"}

    async def test_terminate_is_not_called_when_the_process_is_killed(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(log=log, task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "kill")
            return await down(me, ref), log

        assert await in_actor(body) == ("killed", [])

    async def test_terminate_gets_the_last_state(self) -> None:
        seen: list[Any] = []

        class Stateful(Actor):
            async def init(self) -> int:
                return 0

            async def run(self, state: int) -> int:
                return await self.receive(
                    ("incr", lambda: state + 1), ("stop", lambda: self.stop("done"))
                )

            async def terminate(self, reason: Any, state: Any) -> None:
                seen.append((reason, state))

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Stateful.start(task_group=tg)
            ref = monitor(pid)
            for m in ("incr", "incr", "stop"):
                send_nowait(pid, m)
            return await down(me, ref)

        assert await in_actor(body) == "done"
        assert seen == [("done", 2)]

    async def test_a_terminate_that_raises_is_logged_and_the_reason_is_kept(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class BadCleanup(Worker):
            async def terminate(self, reason: Any, state: Any) -> None:
                raise Boom("cleanup failed")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await BadCleanup.start(task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "custom"))
            return await down(me, ref)

        assert await in_actor(body) == "custom"
        (record,) = error_records(caplog)
        assert "cleanup failed" in record.getMessage()

    async def test_stop_inside_terminate_exits_with_that_reason_and_disturbs_nothing(
        self,
    ) -> None:
        class StopsInTerminate(Worker):
            async def terminate(self, reason: Any, state: Any) -> None:
                self.stop("changed my mind")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            recording = _RecordingTaskGroup(tg)
            pid = await StopsInTerminate.start(task_group=recording)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "first"))
            return await down(me, ref), is_alive(pid), pid in processes(), recording.endings

        assert await in_actor(body) == ("changed my mind", False, False, ["returned"])


class Hanging(Worker):
    """A Worker whose ``terminate`` never returns."""

    async def terminate(self, reason: Any, state: Any) -> None:
        self.log.append((self.tag, "terminating"))
        await anyio.sleep_forever()


class TestExitProcess:
    async def test_exit_process_with_a_reason_kills_a_process_that_does_not_trap(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(log=log, task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "bye")
            return await down(me, ref), log

        assert await in_actor(body) == ("bye", [("worker", "bye")])

    async def test_a_process_sending_itself_a_normal_exit_signal_exits_normally(self) -> None:
        class SelfExiting(Worker):
            async def run(self, state: Any) -> Any:
                await self.receive(("go", lambda: None))
                exit_process(self.pid, "normal")
                await anyio.sleep_forever()

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await SelfExiting.start(task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, "go")
            return await down(me, ref)

        assert await in_actor(body) == "normal"

    async def test_exit_process_with_normal_is_ignored_unless_the_target_traps(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            plain = await Worker.start(task_group=tg)
            trapper = await Worker.start(trap=True, report_to=me.pid, task_group=tg)
            exit_process(plain, "normal")
            exit_process(trapper, "normal")
            got = await me.receive((("worker", ANY), lambda m: m), timeout=2)
            return got == ("EXIT", me.pid, "normal"), await ping(me, plain), await ping(me, trapper)

        assert await in_actor(body) == (True, True, True)

    async def test_a_trapping_process_gets_an_EXIT_message_instead_of_dying(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(trap=True, report_to=me.pid, task_group=tg)
            exit_process(pid, "bye")
            got = await me.receive((("worker", ANY), lambda m: m), timeout=2)
            return got == ("EXIT", me.pid, "bye"), await ping(me, pid)

        assert await in_actor(body) == (True, True)

    async def test_kill_cannot_be_trapped_and_exits_with_killed(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Worker.start(trap=True, log=log, task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "kill")
            return await down(me, ref), log

        assert await in_actor(body) == ("killed", [])

    async def test_kill_interrupts_a_hanging_terminate_and_exits_with_killed(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            pid = await Hanging.start(log=log, report_to=me.pid, task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "normal"))
            await wait_until(lambda: log, timeout=2, what="terminate to start")
            exit_process(pid, "kill")
            return await down(me, ref)

        assert await in_actor(body) == "killed"

    async def test_an_exit_signal_waits_until_the_process_leaves_a_shielded_scope(
        self,
    ) -> None:
        # An anyio scope with shield=True inside a process is honoured: the exit
        # takes effect when the process leaves it, not in the middle of it.
        log: list[Any] = []
        inside = anyio.Event()
        release = anyio.Event()

        class Shielded(Actor):
            async def run(self, state: Any) -> Any:
                with anyio.CancelScope(shield=True):
                    inside.set()
                    await release.wait()
                    log.append("shielded part done")
                await anyio.lowlevel.checkpoint()  # the exit takes effect here
                log.append("after the shield")  # never reached

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Shielded.start(task_group=tg)
            ref = monitor(pid)
            await inside.wait()
            exit_process(pid, "bye")
            await ping_loop_turns(5)
            still = is_alive(pid)
            release.set()
            return still, await down(me, ref), log

        assert await in_actor(body) == (True, "bye", ["shielded part done"])

    async def test_a_process_that_swallows_the_cancellation_is_cancelled_again(self) -> None:
        swallowed: list[int] = []

        class Stubborn(Actor):
            async def run(self, state: Any) -> Any:
                while True:
                    try:
                        await anyio.sleep_forever()
                    except anyio.get_cancelled_exc_class():
                        swallowed.append(1)
                        if len(swallowed) == 3:
                            raise

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Stubborn.start(task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "bye")
            return await down(me, ref), len(swallowed)

        assert await in_actor(body) == ("bye", 3)

    async def test_an_exit_signal_interrupts_an_unshielded_anyio_scope_in_a_process(
        self,
    ) -> None:
        class Waiting(Actor):
            async def run(self, state: Any) -> Any:
                with anyio.move_on_after(30):
                    await anyio.sleep_forever()
                return "the scope swallowed the exit"

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Waiting.start(task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "bye")
            return await down(me, ref)

        with anyio.fail_after(5):
            assert await in_actor(body) == "bye"

    async def test_a_kill_during_terminate_waits_for_a_shielded_section_in_it(
        self,
    ) -> None:
        log: list[Any] = []
        inside = anyio.Event()
        release = anyio.Event()

        class Flushing(Actor):
            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

            async def terminate(self, reason: Any, state: Any) -> None:
                with anyio.CancelScope(shield=True):
                    inside.set()
                    await release.wait()
                    log.append("flushed")
                await anyio.lowlevel.checkpoint()  # the kill takes effect here
                log.append("after the flush")  # never reached

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Flushing.start(task_group=tg)
            ref = monitor(pid)
            exit_process(pid, "shutdown")
            await inside.wait()
            exit_process(pid, "kill")
            await ping_loop_turns(5)
            before_release = list(log)  # still inside its shielded flush
            release.set()
            return before_release, await down(me, ref), log

        assert await in_actor(body) == ([], "killed", ["flushed"])

    async def test_a_kill_overrides_an_exit_signal_the_process_has_not_acted_on_yet(
        self,
    ) -> None:
        # "shutdown" arrived while the process was in a shield, then "kill" (a
        # supervisor's shutdown timeout): the kill wins, as it is untrappable, and
        # terminate is not run -- a terminate that hangs cannot hang the shutdown.
        log: list[Any] = []
        inside = anyio.Event()
        release = anyio.Event()

        class Shielded(Actor):
            async def run(self, state: Any) -> Any:
                with anyio.CancelScope(shield=True):
                    inside.set()
                    await release.wait()
                await anyio.sleep_forever()

            async def terminate(self, reason: Any, state: Any) -> None:
                log.append(reason)
                await anyio.sleep_forever()  # would hang a shutdown it ran in

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Shielded.start(task_group=tg)
            ref = monitor(pid)
            await inside.wait()
            exit_process(pid, "shutdown")
            exit_process(pid, "kill")
            release.set()
            return await down(me, ref), log

        with anyio.fail_after(5):
            assert await in_actor(body) == ("killed", [])

    async def test_after_a_long_shield_the_exit_lands_at_the_first_checkpoint(self) -> None:
        # The exit signal came during a long shielded handler; the server must not
        # go on handling its queued messages once out of the shield.
        inside = anyio.Event()
        handled: list[Any] = []

        class Server(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                if request == "slow":
                    with anyio.CancelScope(shield=True):
                        inside.set()
                        await anyio.sleep(0.2)
                else:
                    handled.append(request)
                    await anyio.lowlevel.checkpoint()
                return state

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Server.start(task_group=tg)
            ref = monitor(pid)
            cast_nowait(pid, "slow")
            await inside.wait()
            for i in range(100):
                cast_nowait(pid, i)
            exit_process(pid, "bye")
            return await down(me, ref)

        assert await in_actor(body) == "bye"
        assert len(handled) <= 1, f"{len(handled)} messages handled after the exit signal"

    async def test_a_long_shielded_section_does_not_keep_the_loop_busy(self) -> None:
        import time

        inside = anyio.Event()

        class Shielded(Actor):
            async def run(self, state: Any) -> Any:
                with anyio.CancelScope(shield=True):
                    inside.set()
                    await anyio.sleep(0.3)
                await anyio.sleep_forever()

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Shielded.start(task_group=tg)
            ref = monitor(pid)
            await inside.wait()
            cpu, wall = time.process_time(), time.monotonic()
            exit_process(pid, "bye")
            reason = await down(me, ref)
            return reason, time.process_time() - cpu, time.monotonic() - wall

        reason, cpu, wall = await in_actor(body)
        assert reason == "bye"
        assert wall >= 0.2
        assert cpu < wall / 2, f"{cpu:.3f} s of CPU in {wall:.3f} s waiting for a shield"

    async def test_exit_process_from_another_thread_kills_the_process(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            ref = monitor(pid)
            thread = threading.Thread(target=exit_process, args=(pid, "from a thread"))
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            return await down(me, ref)

        assert await in_actor(body) == "from a thread"

    async def test_exit_process_to_a_dead_process_is_dropped(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            exit_process(pid, "kill")
            return is_alive(me.pid)

        assert await in_actor(body) is True

    def test_exit_process_to_an_unknown_name_raises_NoProcess_naming_it(self) -> None:
        with pytest.raises(NoProcess, match=r"exit_process\(\) to 'nobody'"):
            exit_process("nobody", "kill")


# ------------------------------------------------------------------------------ links


class TestLinks:
    async def test_a_crash_propagates_to_a_linked_process_with_the_same_reason(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        error = Boom("spreads")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            crasher = await Worker.start(tag="crasher", log=log, task_group=tg)
            linked = await Worker.start(tag="linked", log=log, link_to=crasher, task_group=tg)
            refs = monitor(crasher), monitor(linked)
            send_nowait(crasher, ("crash", error))
            return [await down(me, r) for r in refs], log

        with caplog.at_level(logging.ERROR, logger="anyotp"):
            reasons, log = await in_actor(body)
        assert reasons[0] is error
        assert reasons[1] is error
        assert sorted(log, key=lambda e: e[0]) == [("crasher", error), ("linked", error)]
        assert len(error_records(caplog)) == 1  # logged by the crasher only

    async def test_messages_sent_before_a_crash_arrive_before_its_EXIT(self) -> None:
        class SendsThenCrashes(Worker):
            async def run(self, state: Any) -> Any:
                target = await self.receive((("go", PID), lambda p: p))
                for i in range(3):
                    send_nowait(target, ("msg", i))
                raise Boom("after sending")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            me.trap_exit = True
            pid = await SendsThenCrashes.start(task_group=tg)
            link(pid)
            ref = monitor(pid)
            send_nowait(pid, ("go", me.pid))
            await down(me, ref)
            return [(m[0], m[1] if m[0] == "msg" else m[2]) for m in await drain(me)]

        got = await in_actor(body)
        assert got[:3] == [("msg", 0), ("msg", 1), ("msg", 2)]
        assert [tag for tag, _ in got[3:]] == ["EXIT"]
        assert isinstance(got[3][1], Boom)

    async def test_links_are_bidirectional(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            target = await Worker.start(tag="target", task_group=tg)
            linker = await Worker.start(tag="linker", link_to=target, task_group=tg)
            ref = monitor(target)
            send_nowait(linker, ("stop", "linker quit"))
            return await down(me, ref)

        assert await in_actor(body) == "linker quit"

    async def test_a_normal_exit_does_not_kill_a_linked_process(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            target = await Worker.start(task_group=tg)
            linked = await Worker.start(link_to=target, task_group=tg)
            ref = monitor(target)
            send_nowait(target, ("stop", "normal"))
            assert await down(me, ref) == "normal"
            return await ping(me, linked), is_alive(linked)

        assert await in_actor(body) == (True, True)

    async def test_a_shutdown_exit_kills_a_linked_process(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            target = await Worker.start(task_group=tg)
            linked = await Worker.start(link_to=target, task_group=tg)
            ref = monitor(linked)
            send_nowait(target, ("stop", "shutdown"))
            return await down(me, ref)

        assert await in_actor(body) == "shutdown"

    async def test_trap_exit_turns_the_exit_signal_into_an_EXIT_message(self) -> None:
        error = Boom("trapped")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            crasher = await Worker.start(task_group=tg)
            trapper = await Worker.start(
                tag="trapper", trap=True, report_to=me.pid, link_to=crasher, task_group=tg
            )
            send_nowait(crasher, ("crash", error))
            msg = await me.receive((("trapper", ("EXIT", PID, ANY)), lambda p, r: (p, r)))
            return msg, crasher, await ping(me, trapper)

        (sender, reason), crasher, alive = await in_actor(body)
        assert sender == crasher
        assert reason is error
        assert alive

    async def test_a_trapping_process_also_gets_an_EXIT_for_a_normal_exit(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            me.trap_exit = True
            target = await Worker.start(task_group=tg)
            link(target)
            send_nowait(target, ("stop", "normal"))
            return await me.receive((("EXIT", target, ANY), lambda r: r), timeout=2)

        assert await in_actor(body) == "normal"

    async def test_kill_kills_a_trapping_process_and_linked_processes_see_killed(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            log: list[Any] = []
            victim = await Worker.start(tag="victim", trap=True, log=log, task_group=tg)
            watcher = await Worker.start(
                tag="watcher", trap=True, report_to=me.pid, link_to=victim, task_group=tg
            )
            bystander = await Worker.start(tag="bystander", link_to=victim, task_group=tg)
            victim_ref, bystander_ref = monitor(victim), monitor(bystander)
            exit_process(victim, "kill")
            return (
                await down(me, victim_ref),
                await me.receive((("watcher", ("EXIT", victim, ANY)), lambda r: r), timeout=2),
                await down(me, bystander_ref),
                await ping(me, watcher),
                log,
            )

        victim, watcher_saw, bystander, watcher_alive, log = await in_actor(body)
        assert victim == "killed"
        assert watcher_saw == "killed"  # "kill" spreads as "killed", which can be trapped
        assert bystander == "killed"
        assert watcher_alive
        assert ("victim", "killed") not in log

    async def test_unlink_stops_the_propagation(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            target = await Worker.start(task_group=tg)
            link(target)
            unlink(target)
            ref = monitor(target)
            send_nowait(target, ("crash", Boom("not mine any more")))
            await down(me, ref)
            return "survived"

        assert await in_actor(body) == "survived"

    async def test_unlink_from_the_other_side_also_removes_the_link(self) -> None:
        class Unlinker(Worker):
            async def init(self, target: PID) -> None:  # type: ignore[override]
                await super().init()
                link(target)
                unlink(target)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            target = await Worker.start(task_group=tg)
            other = await Unlinker.start(target, task_group=tg)
            ref = monitor(target)
            send_nowait(target, ("crash", Boom("alone")))
            await down(me, ref)
            return await ping(me, other)

        assert await in_actor(body) is True

    async def test_linking_to_a_dead_process_raises_NoProcess_when_not_trapping(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            with pytest.raises(NoProcess, match=rf"link\(\) to {re.escape(repr(pid))}.*not alive"):
                link(pid)
            with pytest.raises(NoProcess, match=r"link\(\) to 'nobody'.*no process is registered"):
                link("nobody")
            return "survived"

        assert await in_actor(body) == "survived"

    async def test_linking_to_a_dead_process_delivers_EXIT_noproc_when_trapping(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            me.trap_exit = True
            link(pid)
            return await me.receive((("EXIT", pid, ANY), lambda r: r), timeout=0)

        assert await in_actor(body) == "noproc"

    async def test_link_outside_a_process_raises_NotInProcess(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Worker.start(task_group=tg)
            with pytest.raises(NotInProcess, match=r"link\(\)"):
                link(pid)
            tg.cancel_scope.cancel()

    async def test_start_link_links_the_new_process_to_the_caller(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            me.trap_exit = True
            pid = await Worker.start_link(task_group=tg)
            send_nowait(pid, ("stop", "linked stop"))
            return await me.receive((("EXIT", pid, ANY), lambda r: r), timeout=2)

        assert await in_actor(body) == "linked stop"

    async def test_start_link_with_a_failing_init_raises_and_does_not_kill_the_caller(
        self,
    ) -> None:
        class Failing(Actor):
            async def init(self) -> None:
                raise Boom("init failed")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            with pytest.raises(StartError):
                await Failing.start_link(task_group=tg)
            with pytest.raises(ReceiveTimeout):  # and no EXIT arrives either
                await me.receive((ANY, lambda m: m), timeout=0)
            return "survived"

        assert await in_actor(body) == "survived"


# --------------------------------------------------------------------------- monitors


class TestMonitors:
    async def test_a_DOWN_message_has_the_documented_shape(self) -> None:
        error = Boom("down")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            ref = monitor(pid)
            assert isinstance(ref, anyotp.Ref)
            send_nowait(pid, ("crash", error))
            got = await me.receive((("DOWN", ref, "process", pid, ANY), lambda r: r), timeout=2)
            return got, await drain(me)

        reason, rest = await in_actor(body)
        assert reason is error
        assert rest == []  # exactly one DOWN

    async def test_monitoring_a_dead_process_delivers_DOWN_noproc_at_once(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            ref = monitor(pid)
            return await me.receive((("DOWN", ref, "process", pid, ANY), lambda r: r), timeout=0)

        assert await in_actor(body) == "noproc"

    async def test_monitoring_an_unknown_name_delivers_DOWN_noproc_at_once(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            ref = monitor("nobody")
            return await me.receive(
                (("DOWN", ref, "process", "nobody", ANY), lambda r: r), timeout=0
            )

        assert await in_actor(body) == "noproc"

    async def test_a_monitor_does_not_kill_the_watcher(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("crash", Boom("watched")))
            await down(me, ref)
            return "survived"

        assert await in_actor(body) == "survived"

    async def test_two_monitors_deliver_two_DOWN_messages(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            refs = monitor(pid), monitor(pid)
            assert refs[0] != refs[1]
            send_nowait(pid, ("stop", "twice"))
            return [await down(me, r) for r in refs]

        assert await in_actor(body) == ["twice", "twice"]

    async def test_demonitor_prevents_the_DOWN_message(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            dropped = monitor(pid)
            kept = monitor(pid)
            active = demonitor(dropped)
            send_nowait(pid, ("stop", "bye"))
            await down(me, kept)
            with pytest.raises(ReceiveTimeout):
                await down(me, dropped, timeout=0)
            return active

        assert await in_actor(body) is True

    async def test_demonitor_with_flush_removes_a_DOWN_that_already_arrived(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            flushed = monitor(pid)
            kept = monitor(pid)
            send_nowait(pid, ("stop", "bye"))
            await down(me, kept)  # the other DOWN came first
            active = demonitor(flushed, flush=True)
            with pytest.raises(ReceiveTimeout):
                await down(me, flushed, timeout=0)
            return active

        assert await in_actor(body) is False

    async def test_demonitor_without_flush_leaves_a_DOWN_that_already_arrived(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            ref = monitor(pid)
            other = monitor(pid)
            send_nowait(pid, ("stop", "bye"))
            await down(me, other)
            demonitor(ref)
            return await down(me, ref, timeout=0)

        assert await in_actor(body) == "bye"

    async def test_monitor_outside_a_process_raises_NotInProcess(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Worker.start(task_group=tg)
            with pytest.raises(NotInProcess, match=r"monitor\(\)"):
                monitor(pid)
            tg.cancel_scope.cancel()


# -------------------------------------------------------------------------- isolation


class TestIsolation:
    async def test_a_crash_never_takes_down_an_unrelated_sibling(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            crasher = await Worker.start(task_group=tg)
            sibling = await Worker.start(task_group=tg)
            ref = monitor(crasher)
            send_nowait(crasher, ("crash", Boom("alone")))
            await down(me, ref)
            return await ping(me, sibling)

        assert await in_actor(body) is True

    async def test_a_crash_under_a_supervisor_never_takes_down_an_unrelated_sibling(
        self,
    ) -> None:
        class Sup(Supervisor):
            strategy = RestartStrategy.ONE_FOR_ONE

            def child_specs(self) -> list[ChildSpec]:
                return [
                    ChildSpec(id="a", actor_class=Worker, kwargs={"tag": "a"}),
                    ChildSpec(id="b", actor_class=Worker, kwargs={"tag": "b"}),
                ]

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            sup = await Sup.start(task_group=tg)
            outsider = await Worker.start(task_group=tg)
            before = {c.id: c.pid for c in await Supervisor.which_children(sup)}
            ref = monitor(before["a"])
            send_nowait(before["a"], ("crash", Boom("supervised crash")))
            await down(me, ref)

            async def restarted() -> dict[str, PID | None] | None:
                after = {c.id: c.pid for c in await Supervisor.which_children(sup)}
                return after if after["a"] not in (None, before["a"]) else None

            after = await wait_until(restarted, timeout=2, what="a restarted")
            return (
                after["b"] == before["b"],
                await ping(me, before["b"]),
                await ping(me, after["a"]),
                await ping(me, outsider),
                is_alive(sup),
            )

        assert await in_actor(body) == (True, True, True, True, True)


# --------------------------------------------------------------------------- children


class Parent(Worker):
    """A Worker that starts owned children in ``init`` as told by ``plan``."""

    async def init(  # type: ignore[override]
        self, plan: Callable[[Parent], Awaitable[None]], log: list[Any], tag: str = "parent"
    ) -> None:
        await super().init(tag=tag, log=log)
        await plan(self)


class TestChildTasks:
    async def test_child_tasks_are_cancelled_and_awaited_before_terminate(self) -> None:
        log: list[Any] = []
        started = anyio.Event()

        async def child() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                log.append("child cancelled")
                raise
            finally:
                with anyio.CancelScope(shield=True):  # async cleanup: it is waited for
                    await anyio.sleep(0.01)
                log.append("child finally")

        async def plan(p: Parent) -> None:
            p.start_soon_child(child)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            await started.wait()
            ref = monitor(pid)
            send_nowait(pid, ("stop", "normal"))
            return await down(me, ref)

        assert await in_actor(body) == "normal"
        assert log == ["child cancelled", "child finally", ("parent", "normal")]

    async def test_child_tasks_are_stopped_when_the_task_group_is_cancelled(self) -> None:
        log: list[Any] = []
        started = anyio.Event()

        async def child() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                log.append("child finally")

        async def plan(p: Parent) -> None:
            p.start_soon_child(child)

        async with anyio.create_task_group() as tg:
            await Parent.start(plan, log, task_group=tg)
            await started.wait()
            tg.cancel_scope.cancel()
        assert log == ["child finally", ("parent", "shutdown")]

    async def test_an_exception_in_a_child_task_crashes_the_process_with_it(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        error = Boom("child task failed")
        log: list[Any] = []

        async def plan(p: Parent) -> None:
            async def fail() -> None:
                raise error

            p.start_soon_child(fail)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            return await down(me, monitor(pid))

        with caplog.at_level(logging.ERROR, logger="anyotp"):
            assert await in_actor(body) is error
        assert log == [("parent", error)]
        (record,) = error_records(caplog)
        assert record.exc_info is not None
        assert record.exc_info[1] is error

    async def test_a_child_task_calling_stop_stops_the_process(self) -> None:
        log: list[Any] = []

        async def plan(p: Parent) -> None:
            p.start_soon_child(p.stop, "stopped by a child")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            return await down(me, monitor(pid))

        assert await in_actor(body) == "stopped by a child"

    async def test_a_child_task_may_be_a_sync_function(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            me.start_soon_child(send, me.pid, "from a sync child")
            return await me.receive(("from a sync child", lambda: True), timeout=2)

        assert await in_actor(body) is True

    async def test_child_tasks_cannot_be_started_after_the_process_exited(self) -> None:
        kept: list[Parent] = []

        async def plan(p: Parent) -> None:
            kept.append(p)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, [], task_group=tg)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "normal"))
            await down(me, ref)
            with pytest.raises(RuntimeError, match="not running"):
                kept[0].start_soon_child(print)

        await in_actor(body)


class TestOwnedProcesses:
    async def test_a_spawned_child_actor_is_stopped_when_its_parent_exits(self) -> None:
        log: list[Any] = []
        children: list[PID] = []

        async def plan(p: Parent) -> None:
            handle = await p.spawn_child_actor(Worker, tag="child", log=log)
            children.append(handle.pid)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            child_ref = monitor(children[0])
            send_nowait(pid, ("stop", "normal"))
            return await down(me, child_ref)

        assert await in_actor(body) == "shutdown"
        assert log == [("child", "shutdown"), ("parent", "normal")]

    async def test_owned_processes_are_stopped_in_reverse_start_order(self) -> None:
        log: list[Any] = []

        async def plan(p: Parent) -> None:
            await p.spawn_child_actor(Worker, tag="first", log=log)
            await Worker.start(tag="second", log=log, task_group=p.children)
            await p.spawn_child_actor(Worker, tag="third", log=log)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            send_nowait(pid, ("stop", "normal"))
            return await down(me, monitor(pid))

        assert await in_actor(body) == "normal"
        assert log == [
            ("third", "shutdown"),
            ("second", "shutdown"),
            ("first", "shutdown"),
            ("parent", "normal"),
        ]

    async def test_owned_processes_are_stopped_even_when_the_parent_is_killed(self) -> None:
        log: list[Any] = []
        children: list[PID] = []

        async def plan(p: Parent) -> None:
            children.append((await p.spawn_child_actor(Worker, tag="child", log=log)).pid)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, log, task_group=tg)
            refs = monitor(pid), monitor(children[0])
            exit_process(pid, "kill")
            return [await down(me, r) for r in refs]

        reasons = await in_actor(body)
        assert sorted(reasons) == ["killed", "shutdown"]
        assert log == [("child", "shutdown")]  # the killed parent's terminate did not run

    async def test_a_child_actor_s_crash_does_not_crash_its_parent(self) -> None:
        children: list[PID] = []

        async def plan(p: Parent) -> None:
            children.append((await p.spawn_child_actor(Worker)).pid)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Parent.start(plan, [], task_group=tg)
            ref = monitor(children[0])
            send_nowait(children[0], ("crash", Boom("child only")))
            await down(me, ref)
            return await ping(me, pid)

        assert await in_actor(body) is True

    async def test_on_exit_is_called_with_pid_and_reason_when_a_child_exits(self) -> None:
        error = Boom("child crashed")

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            children: list[PID] = []

            async def plan(p: Parent) -> None:
                def on_exit(pid: PID, reason: Any) -> None:
                    send_nowait(me.pid, ("on_exit", pid, reason))

                children.append((await p.spawn_child_actor(Worker, on_exit=on_exit)).pid)

            parent = await Parent.start(plan, [], task_group=tg)
            send_nowait(children[0], ("crash", error))
            got = await me.receive((("on_exit", PID, ANY), lambda p, r: (p, r)), timeout=2)
            return got, children[0], await ping(me, parent)

        (pid, reason), child, parent_alive = await in_actor(body)
        assert pid == child
        assert reason is error
        assert parent_alive

    async def test_on_exit_is_called_for_children_stopped_by_the_parent_s_exit(
        self,
    ) -> None:
        children: list[PID] = []

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            async def plan(p: Parent) -> None:
                async def on_exit(pid: PID, reason: Any) -> None:
                    send_nowait(me.pid, ("on_exit", pid, reason))

                children.append((await p.spawn_child_actor(Worker, on_exit=on_exit)).pid)

            parent = await Parent.start(plan, [], task_group=tg)
            ref = monitor(parent)
            send_nowait(parent, ("stop", "normal"))
            await down(me, ref)
            return await drain(me)

        assert await in_actor(body) == [("on_exit", children[0], "shutdown")]

    async def test_an_actor_handle_stops_and_waits_for_its_child(self) -> None:
        handles: list[anyotp.ActorHandle] = []

        async def plan(p: Parent) -> None:
            handles.append(await p.spawn_child_actor(Worker, tag="a"))
            handles.append(await p.spawn_child_actor(Worker, tag="b"))

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            await Parent.start(plan, [], task_group=tg)
            a, b = handles
            stopped = await a.stop("enough")
            send_nowait(b.pid, ("stop", "own reason"))
            waited = await b.wait()
            return stopped, waited, is_alive(a.pid), is_alive(b.pid), repr(a)

        stopped, waited, a_alive, b_alive, rep = await in_actor(body)
        assert (stopped, waited, a_alive, b_alive) == ("enough", "own reason", False, False)
        assert rep.startswith("<ActorHandle <PID 0.")

    async def test_a_child_that_does_not_stop_in_its_shutdown_time_is_killed_and_waited_for(
        self,
    ) -> None:
        log: list[Any] = []
        children: list[PID] = []
        seen_by_parent: list[Any] = []

        class ParentChecking(Parent):
            async def terminate(self, reason: Any, state: Any) -> None:
                seen_by_parent.append(is_alive(children[0]))

        async def plan(p: Parent) -> None:
            handle = await p.spawn_child_actor(Hanging, tag="child", log=log, shutdown=0.05)
            children.append(handle.pid)

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await ParentChecking.start(plan, log, task_group=tg)
            refs = monitor(pid), monitor(children[0])
            send_nowait(pid, ("stop", "normal"))
            return [await down(me, r) for r in refs]

        assert await in_actor(body) == ["normal", "killed"]
        assert log == [("child", "terminating")]
        assert seen_by_parent == [False]  # the kill was waited for before terminate

    async def test_an_actor_handle_kills_a_child_that_does_not_stop_in_time(self) -> None:
        handles: list[anyotp.ActorHandle] = []

        async def plan(p: Parent) -> None:
            handles.append(await p.spawn_child_actor(Hanging))

        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            await Parent.start(plan, [], task_group=tg)
            ref = monitor(handles[0].pid)
            reason = await handles[0].stop(timeout=0.05)
            return reason, is_alive(handles[0].pid), await down(me, ref, timeout=0)

        assert await in_actor(body) == ("killed", False, "killed")

    async def test_cancelling_the_task_group_of_a_process_tree_leaves_no_process_behind(
        self,
    ) -> None:
        log: list[Any] = []
        ready = anyio.Event()

        class Sup(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [
                    ChildSpec(id="w1", actor_class=Worker, kwargs={"tag": "w1", "log": log}),
                    ChildSpec(id="w2", actor_class=Worker, kwargs={"tag": "w2", "log": log}),
                ]

        async def plan(p: Parent) -> None:
            await p.spawn_child_actor(Worker, tag="child", log=log)
            await Sup.start(task_group=p.children)
            await Task.spawn(anyio.sleep_forever, p.children)
            p.start_soon_child(anyio.sleep_forever)
            ready.set()

        async with anyio.create_task_group() as tg:
            await Parent.start(plan, log, task_group=tg)
            await Sup.start(task_group=tg)
            await Worker.start(tag="loose", log=log, task_group=tg)
            await ready.wait()
            assert len(processes()) == 10
            tg.cancel_scope.cancel()
        assert processes() == []
        assert anyotp.registered() == []
        assert log.count(("parent", "shutdown")) == 1
        assert log.index(("child", "shutdown")) < log.index(("parent", "shutdown"))
        assert sum(1 for _, reason in log if reason == "shutdown") == len(log)


# ----------------------------------------------------------------------- send and cast


class TestSendAndCast:
    async def test_send_and_cast_to_a_dead_pid_are_dropped_silently_as_in_erlang(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await dead_pid(me, tg)
            send_nowait(pid, "hello")
            cast_nowait(pid, "hello")
            await send(pid, "hello")
            await cast(pid, "hello")
            return is_alive(pid), await drain(me)

        assert await in_actor(body) == (False, [])

    def test_send_to_an_unknown_name_raises_NoProcess_naming_it(self) -> None:
        with pytest.raises(NoProcess, match=r"send\(\) to 'nobody'.*no process is registered"):
            send_nowait("nobody", "hello")
        with pytest.raises(NoProcess, match=r"cast\(\) to 'nobody'.*no process is registered"):
            cast_nowait("nobody", "hello")
        assert issubclass(NoProcess, LookupError)

    def test_send_to_something_that_is_not_a_pid_or_name_raises_TypeError(self) -> None:
        with pytest.raises(TypeError, match=r"got int 42"):
            send_nowait(42, "hello")  # type: ignore[arg-type]

    async def test_send_works_awaited_or_not(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            await send(me.pid, 1)
            send_nowait(me.pid, 2)
            return await drain(me)

        assert await in_actor(body) == [1, 2]


# ------------------------------------------------------------------------------- call


class Server(GenServer):
    async def init(self) -> Any:
        return None

    async def handle_call(self, request: Any, from_: anyotp.From, state: Any) -> Any:
        match request:
            case "ping":
                return "pong", state
            case "crash":
                raise Boom("crashed while handling the call")
            case "hold":
                return NoReply(from_)  # remember the caller, reply later (or never)
            case ("stop_during", reason):
                self.stop(reason)
        raise AssertionError(request)

    async def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "release" and state is not None:
            anyotp.reply(state, "late reply")
        return None


class TestCall:
    async def test_every_way_call_can_fail(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            # 1. The server is dead: CallNoProc (a LookupError), at once.
            dead = await dead_pid(me, tg)
            start = anyio.current_time()
            with pytest.raises(CallNoProc, match=re.escape(repr(dead))) as noproc:
                await call(dead, "ping", timeout=30)
            assert anyio.current_time() - start < 1
            assert isinstance(noproc.value, LookupError)
            assert isinstance(noproc.value, NoProcess)
            assert (noproc.value.server, noproc.value.request) == (dead, "ping")
            assert (noproc.value.timeout, noproc.value.reason) == (30, "noproc")

            # 2. No process has that name: CallNoProc.
            with pytest.raises(CallNoProc, match=r"'nobody'.*no process is registered") as info:
                await call("nobody", "ping")
            assert (info.value.server, info.value.reason) == ("nobody", "noproc")

            # 3. The server crashes while handling the call: CallExit with the
            #    exception as reason and cause, raised at once (not at the timeout).
            server = await Server.start(task_group=tg)
            start = anyio.current_time()
            with pytest.raises(CallExit, match=r"exited with reason Boom\(") as crash:
                await call(server, "crash", timeout=30)
            assert anyio.current_time() - start < 5
            assert isinstance(crash.value.reason, Boom)
            assert crash.value.__cause__ is crash.value.reason
            assert (crash.value.server, crash.value.request) == (server, "crash")

            # 4. The server exits (without crashing) before replying: CallExit with
            #    its exit reason.
            server = await Server.start(task_group=tg)
            with pytest.raises(CallExit, match="'going away'") as stopped:
                await call(server, ("stop_during", "going away"), timeout=None)
            assert stopped.value.reason == "going away"

            # 5. The server is killed while the call waits: CallExit "killed".
            server = await Server.start(task_group=tg)

            async def kill_soon() -> None:
                await anyio.lowlevel.checkpoint()
                exit_process(server, "kill")

            me.start_soon_child(kill_soon)
            with pytest.raises(CallExit) as killed:
                await call(server, "hold", timeout=30)
            assert killed.value.reason == "killed"

            # 6. No reply in time: CallTimeout (a TimeoutError) naming server, request
            #    and timeout; the late reply never reaches the caller's mailbox.
            server = await Server.start(task_group=tg)
            pattern = rf"call\({re.escape(repr(server))}, 'hold', timeout=0.05\) timed out"
            with pytest.raises(CallTimeout, match=pattern) as timeout:
                await call(server, "hold", timeout=0.05)
            assert isinstance(timeout.value, TimeoutError)
            assert (timeout.value.server, timeout.value.request) == (server, "hold")
            assert (timeout.value.timeout, timeout.value.reason) == (0.05, "timeout")
            await cast(server, "release")  # the server replies now, too late
            assert await call(server, "ping") == "pong"  # ... and has done so
            assert await drain(me) == []

            # 7. A process calls itself: CallError "calling_self" (not a deadlock).
            with pytest.raises(CallError, match="cannot call itself") as itself:
                await call(me.pid, "ping")
            assert itself.value.reason == "calling_self"
            assert not isinstance(itself.value, TimeoutError | LookupError)

            # 8. The target is neither a PID nor a name: TypeError.
            with pytest.raises(TypeError, match=r"got int 42"):
                await call(42, "ping")  # type: ignore[arg-type]

            # Every call failure is a CallError.
            for exc in (noproc, crash, stopped, killed, timeout, itself):
                assert isinstance(exc.value, CallError)
            return "done"

        assert await in_actor(body) == "done"

    async def test_call_from_outside_any_process_works(self) -> None:
        async with anyio.create_task_group() as tg:
            server = await Server.start(task_group=tg)
            assert await call(server, "ping") == "pong"
            tg.cancel_scope.cancel()

    async def test_cast_from_another_thread_reaches_the_server(self) -> None:
        class Box(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                return request

            async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
                return state, state

        async with anyio.create_task_group() as tg:
            server = await Box.start(task_group=tg)
            thread = threading.Thread(target=cast_nowait, args=(server, "from a thread"))
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            assert await call(server, "get") == "from a thread"
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------ is_alive, processes


class TestIntrospection:
    async def test_is_alive_is_true_while_running_and_false_after_exit(self) -> None:
        async def body(me: Actor, tg: anyio.abc.TaskGroup) -> Any:
            pid = await Worker.start(task_group=tg)
            alive_before = is_alive(pid)
            ref = monitor(pid)
            send_nowait(pid, ("stop", "normal"))
            await down(me, ref)
            return alive_before, is_alive(pid), is_alive("nobody")

        assert await in_actor(body) == (True, False, False)

    async def test_processes_lists_live_processes_oldest_first(self) -> None:
        async with anyio.create_task_group() as tg:
            a = await Worker.start(task_group=tg)
            b = await Worker.start(task_group=tg)
            assert processes() == [a, b]
            tg.cancel_scope.cancel()
        assert processes() == []


class TestFootprint:
    async def test_an_idle_server_costs_few_gc_tracked_objects(
        self, anyio_backend_name: str
    ) -> None:
        # A budget, so that a change that makes every process heavier for the garbage
        # collector shows up here (bench: million, spawn).  Measured: 16 on asyncio
        # (a bare task per process, no cancel scope), 37 on trio.
        import gc

        from anyotp import GenServer

        class Idle(GenServer):
            async def init(self) -> int:
                return 0

        budget = {"asyncio": 20, "trio": 40}[anyio_backend_name]
        n = 200
        async with anyio.create_task_group() as tg:
            for _ in range(10):  # warm up: per-loop and per-group objects
                await Idle.start(task_group=tg)
            gc.collect()
            before = len(gc.get_objects())
            for _ in range(n):
                await Idle.start(task_group=tg)
            gc.collect()
            per_process = (len(gc.get_objects()) - before) / n
            tg.cancel_scope.cancel()
        assert per_process <= budget, f"{per_process:.1f} GC-tracked objects per idle server"


class TestStartIntoACancelledGroup:
    async def test_a_process_started_while_its_group_is_cancelled_is_stopped(self) -> None:
        from anyotp import GenServer, StartError

        class Slow(GenServer):
            async def terminate(self, reason: Any, state: Any) -> None:
                await anyio.sleep(0.02)  # the group is still cancelling meanwhile

        late: list[Any] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                await Slow.start(task_group=tg)
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    try:
                        late.append(await Slow.start(task_group=tg))
                    except StartError as e:  # trio: cancelled in its init
                        late.append(e)
        assert late
        if not isinstance(late[0], StartError):
            assert not is_alive(late[0])
        assert anyotp.processes() == []

    async def test_a_process_stopped_before_it_ran_still_runs_terminate_and_dies(
        self,
    ) -> None:
        # Stopped before its first step, a process whose init and run never suspend
        # still finishes terminate (which awaits) and dies: its name is freed.
        from anyotp import StartError, whereis

        log: list[Any] = []

        class Eager(Actor):
            def init(self) -> int:
                return 0

            async def run(self, state: Any) -> Any:
                raise RuntimeError("fails before any await")

            async def terminate(self, reason: Any, state: Any) -> None:
                await anyio.lowlevel.checkpoint()
                log.append(("terminated", reason))

        class Slow(Actor):
            async def run(self, state: Any) -> Any:
                await anyio.sleep_forever()

            async def terminate(self, reason: Any, state: Any) -> None:
                await anyio.sleep(0.02)  # the group is still cancelling meanwhile

        outcome: list[Any] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                await Slow.start(task_group=tg)
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await ping_loop_turns(3)  # the group is stopping Slow meanwhile
                    try:
                        outcome.append(await Eager.start(task_group=tg, name="eager"))
                    except StartError as e:
                        outcome.append(e)
        assert whereis("eager") is None
        assert anyotp.processes() == []
        if not isinstance(outcome[0], StartError):  # it started, then was stopped
            # asyncio: stopped before its first step ("shutdown"); trio: the group's
            # cancellation waits for a checkpoint, and run() crashed first
            assert [entry[0] for entry in log] == ["terminated"]
