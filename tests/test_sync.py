"""Tests for anyotp.sync: the thread-based GenServer API of seeds 001 and 002.

Grouped by API: the seeds' examples, generics and message types, start, cast, call,
stop, the context manager, threads, the module-level call/cast, the process core
(pids, names, links, monitors, exit signals, kill), async <-> sync calls, supervision,
and interpreter exit.  Waiting is always on an event or a deadline-bounded poll.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Generic, Literal, Optional, Protocol, TypeVar, Union

import anyio
import pytest

import anyotp
import anyotp.sync
from anyotp import ChildSpec, Supervisor, exit_process, is_alive, process_info, whereis
from anyotp.sync import GenServer, GenServerError, GenServerTimeoutError, TypedGenServer

WAIT = 5.0  # seconds any wait in these tests may take before it counts as a hang


# --------------------------------------------------------------------------- helpers


def wait_until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.002)


def queue_len(server: TypedGenServer[Any, Any, Any]) -> int:
    info = process_info(server.pid)
    return -1 if info is None else int(info["message_queue_len"])


def server_started(server: TypedGenServer[Any, Any, Any]) -> bool:
    try:
        _ = server.pid
    except GenServerError:
        return False
    return True


def server_thread_alive(server: TypedGenServer[Any, Any, Any]) -> bool:
    name = f"anyotp.sync {type(server).__name__} {server.pid!r}"
    return any(t.name == name for t in threading.enumerate())


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for concurrent clients; results and errors come back as futures."""
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


class Counter(GenServer[int]):
    """The workhorse: a counter that can also block, fail and report its thread."""

    def init(self, start: int = 0, *, gate: threading.Event | None = None) -> int:
        self.gate = gate or threading.Event()
        self.entered = threading.Event()
        self.terminated_with: list[int] = []
        return start

    def handle_cast(self, message: dict[str, Any], state: int) -> int:
        action = message.get("action")
        if action == "increment":
            return state + 1
        if action == "fail":
            raise RuntimeError("cast handler failed")
        if action == "block":
            self.entered.set()
            self.gate.wait(WAIT)
            return state
        return super().handle_cast(message, state)

    def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
        action = message.get("action")
        if action == "get":
            return state, state
        if action == "increment_and_get":
            return state + 1, state + 1
        if action == "block":
            self.entered.set()
            self.gate.wait(WAIT)
            return "late", state + 100
        if action == "fail":
            raise ValueError("call handler failed")
        if action == "set_then_fail":
            state = 999
            raise ValueError("failed after changing a local")
        if action == "thread":
            return threading.get_ident(), state
        if action == "bad_return":
            return "not a tuple"  # type: ignore[return-value]
        raise NotImplementedError(f"Call action '{action}' not implemented")

    def terminate(self, state: int) -> None:
        self.terminated_with.append(state)


@pytest.fixture
def counter() -> Iterator[Counter]:
    server = Counter()
    server.start()
    yield server
    server.gate.set()
    if anyotp.is_alive(server.pid):
        server.stop(timeout=WAIT)


# ----------------------------------------------------------------- seed examples

SEED_001 = """
import time
import logging
from anyotp.sync import GenServer, GenServerError, GenServerTimeoutError

# Configure logging (optional)
logging.basicConfig(level=logging.INFO)

class CounterServer(GenServer[int]): # State is an integer
    def init(self) -> int:
        return 0  # Initial count is 0

    def handle_cast(self, message: dict, state: int) -> int:
        action = message.get("action")
        if action == "increment":
            return state + 1
        elif action == "decrement":
            return state - 1
        else:
            return super().handle_cast(message, state) # Default unhandled cast

    def handle_call(self, message: dict, state: int) -> tuple[int, int]:
        action = message.get("action")
        if action == "get_count":
            return state, state  # Return current count
        elif action == "increment_and_get":
            new_state = state + 1
            return new_state, new_state # Increment and return new count
        else:
            raise NotImplementedError(f"Call action '{action}' not implemented: {action}")

if __name__ == "__main__":
    counter = CounterServer()
    counter.start()

    counter.cast({"action": "increment"})
    counter.cast({"action": "increment"})

    count = counter.call({"action": "get_count"})
    print(f"Current Count: {count}") # Output: Current Count: 2

    new_count = counter.call({"action": "increment_and_get"})
    print(f"Incremented Count: {new_count}") # Output: Incremented Count: 3

    counter.stop()
    print("Counter Server Stopped.")
"""

SEED_002 = """
import time
import logging
from anyotp.sync import TypedGenServer, GenServerError, GenServerTimeoutError

# Configure logging (optional)
logging.basicConfig(level=logging.INFO)

class Increment:
    pass


class Decrement:
    pass


class GetCount:
    pass


class IncrementAndGet:
    pass


class CounterServer(
    TypedGenServer[Increment | Decrement, GetCount | IncrementAndGet, int]
):  # Example with state as int
    def init(self) -> int:
        return 0  # Initial state is 0

    def handle_cast(self, message, state: int) -> int:
        match message:
            case Increment():
                return state + 1
            case Decrement():
                return state -1
            case _:
                return super().handle_cast(message, state)

    def handle_call(self, message, state: int) -> tuple[int, int]:
        match message:
            case GetCount():
                return state, state

            case IncrementAndGet():
                new_state = state + 1
                return new_state, new_state

            case _:
                raise NotImplementedError("Call message %s not implemented.", message)

if __name__ == "__main__":
    counter = CounterServer()
    counter.start()

    counter.cast(Increment())
    counter.cast(Increment())

    count = counter.call(GetCount())
    print(f"Current Count: {count}") # Output: Current Count: 2

    new_count = counter.call(IncrementAndGet())
    print(f"Incremented Count: {new_count}") # Output: Incremented Count: 3

    counter.stop()
    print("Counter Server Stopped.")
"""

SEED_OUTPUT = "Current Count: 2\nIncremented Count: 3\nCounter Server Stopped.\n"


def run_as_main(source: str, filename: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


class TestSeedExamples:
    def test_seed_001_counter_example_runs_as_written(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_as_main(SEED_001, "seed_001_counter_example.py")
        assert capsys.readouterr().out == SEED_OUTPUT

    def test_seed_002_typed_counter_example_runs_as_written(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_as_main(SEED_002, "seed_002_typed_counter_example.py")
        assert capsys.readouterr().out == SEED_OUTPUT

    def test_seed_002_server_rejects_a_message_of_the_other_kind(self) -> None:
        ns = run_as_main(SEED_002.split('if __name__ == "__main__":')[0], "seed_002.py")
        server = ns["CounterServer"]()
        with server:
            with pytest.raises(GenServerError, match=r"cast\(\) .* takes Increment \| Decrement"):
                server.cast(ns["GetCount"]())
            with pytest.raises(GenServerError, match=r"takes GetCount \| IncrementAndGet"):
                server.call(ns["Increment"]())
            assert server.call(ns["GetCount"]()) == 0

    def test_seed_001_unknown_call_action_reaches_the_caller_as_genserver_error(self) -> None:
        ns = run_as_main(SEED_001.split('if __name__ == "__main__":')[0], "seed_001.py")
        with ns["CounterServer"]() as server:
            with pytest.raises(GenServerError, match="'reset' not implemented") as info:
                server.call({"action": "reset"})
            assert isinstance(info.value.__cause__, NotImplementedError)
            assert server.call({"action": "get_count"}) == 0


# ------------------------------------------------------------ generics and types


class Increment:
    pass


class Decrement:
    pass


class GetCount:
    pass


CastT = TypeVar("CastT")


class TestMessageTypes:
    def test_genserver_is_subscriptable_by_its_state_type(self) -> None:
        class IntServer(GenServer[int]):
            pass

        class ListServer(GenServer[list[str]]):
            pass

        assert IntServer.__orig_bases__ == (GenServer[int],)  # type: ignore[attr-defined]
        assert ListServer.__orig_bases__ == (GenServer[list[str]],)  # type: ignore[attr-defined]

    def test_genserver_cast_of_a_non_dict_raises_genserver_error_naming_the_type(
        self, counter: Counter
    ) -> None:
        with pytest.raises(
            GenServerError,
            match=r"^cast\(\) to the sync GenServer Counter takes a dict, got str 'incr'$",
        ):
            counter.cast("incr")  # type: ignore[arg-type]

    def test_genserver_call_of_a_non_dict_raises_genserver_error_naming_the_type(
        self, counter: Counter
    ) -> None:
        with pytest.raises(GenServerError, match=r"call\(\) .* takes a dict, got tuple \('get',\)"):
            counter.call(("get",))  # type: ignore[arg-type]

    def test_typed_genserver_accepts_every_member_of_a_union(self) -> None:
        class Server(TypedGenServer[Increment | Decrement, Union[GetCount, int], int]):  # noqa: UP007
            def init(self) -> int:
                return 0

            def handle_cast(self, message: Increment | Decrement, state: int) -> int:
                return state + (1 if isinstance(message, Increment) else -1)

            def handle_call(self, message: GetCount | int, state: int) -> tuple[int, int]:
                return state, state

        with Server() as server:
            server.cast(Increment())
            server.cast(Increment())
            server.cast(Decrement())
            assert server.call(GetCount()) == 1
            assert server.call(7) == 1
            with pytest.raises(GenServerError, match=r"takes GetCount \| an int, got str 'x'"):
                server.call("x")  # type: ignore[arg-type]

    def test_typed_genserver_checks_none_optional_literal_annotated_and_generic_aliases(
        self,
    ) -> None:
        class Server(
            TypedGenServer[
                Optional[Literal["inc", "dec"]],  # noqa: UP045
                Annotated[list[int], "numbers"],
                int,
            ]
        ):
            def init(self) -> int:
                return 0

            def handle_cast(self, message: Any, state: int) -> int:
                return state + 1

            def handle_call(self, message: Any, state: int) -> tuple[int, int]:
                return sum(message) + state, state

        with Server() as server:
            server.cast("inc")
            server.cast(None)
            with pytest.raises(GenServerError, match=r"takes Literal\['inc', 'dec'\] \| None"):
                server.cast("reset")
            assert server.call([1, 2]) == 5
            with pytest.raises(GenServerError, match=r"takes a list, got tuple"):
                server.call((1, 2))

    def test_any_object_and_unbound_type_variables_accept_anything(self) -> None:
        class Server(TypedGenServer[Any, object, None]):
            def handle_call(self, message: object, state: None) -> tuple[object, None]:
                return message, state

        with Server() as server:
            server.cast(1)
            assert server.call("anything") == "anything"

    def test_a_subclass_of_a_generic_subclass_checks_the_substituted_type(self) -> None:
        class Base(TypedGenServer[CastT, GetCount, int], Generic[CastT]):
            def init(self) -> int:
                return 0

            def handle_cast(self, message: CastT, state: int) -> int:
                return state + 1

            def handle_call(self, message: GetCount, state: int) -> tuple[int, int]:
                return state, state

        class Concrete(Base[Increment]):
            pass

        with Concrete() as server:
            server.cast(Increment())
            with pytest.raises(GenServerError, match=r"takes Increment, got Decrement"):
                server.cast(Decrement())  # type: ignore[arg-type]
            assert server.call(GetCount()) == 1

    def test_a_type_that_isinstance_cannot_check_is_rejected_when_the_class_is_defined(
        self,
    ) -> None:
        class NotRuntime(Protocol):
            def ping(self) -> None: ...

        with pytest.raises(TypeError, match="Protocol without @runtime_checkable"):

            class A(TypedGenServer[NotRuntime, GetCount, int]):
                pass

        with pytest.raises(TypeError, match="cannot check messages against"):

            class B(TypedGenServer["Increment", GetCount, int]):
                pass

    def test_genserver_timeout_error_is_a_genserver_error_and_a_timeout_error(self) -> None:
        assert issubclass(GenServerTimeoutError, GenServerError)
        assert issubclass(GenServerTimeoutError, TimeoutError)
        assert issubclass(GenServerError, anyotp.OTPError)


# ------------------------------------------------------------------------- start


class TestStart:
    def test_start_runs_init_with_the_given_positional_and_keyword_arguments(self) -> None:
        gate = threading.Event()
        server = Counter()
        server.start(41, gate=gate)
        try:
            assert server.call({"action": "increment_and_get"}) == 42
            assert server.gate is gate
        finally:
            server.stop()

    def test_start_twice_raises_genserver_error_saying_the_server_is_running(
        self, counter: Counter
    ) -> None:
        with pytest.raises(
            GenServerError,
            match=r"Counter.start\(\) failed: the server is already running as <PID 0\.\d+>; "
            r"a server instance runs once",
        ):
            counter.start()

    def test_start_after_stop_raises_genserver_error_saying_the_server_is_stopped(self) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(
            GenServerError,
            match=r"the server is stopped \(exit reason 'normal'\); .* create a new Counter\(\)",
        ):
            server.start()

    def test_init_raising_makes_start_raise_genserver_error_with_the_cause_chained(self) -> None:
        class Broken(GenServer[int]):
            def init(self) -> int:
                raise ValueError("no database")

        server = Broken()
        with pytest.raises(
            GenServerError,
            match=r"Broken.start\(\) failed: init raised ValueError\('no database'\)",
        ) as info:
            server.start()
        assert isinstance(info.value.__cause__, ValueError)
        assert not is_alive(server.pid)
        with pytest.raises(GenServerError, match="the server is stopped"):
            server.cast({"action": "increment"})

    def test_a_started_server_has_a_live_pid_and_a_never_started_one_has_none(self) -> None:
        server = Counter()
        with pytest.raises(GenServerError, match=r"Counter.pid: the server was never started"):
            _ = server.pid
        assert repr(server) == "<Counter not started>"
        with server:
            assert is_alive(server.pid)
            assert server.pid in anyotp.processes()
        assert not is_alive(server.pid)

    def test_init_without_an_override_gives_state_none(self) -> None:
        class Echo(GenServer[None]):
            def handle_call(self, message: dict[str, Any], state: None) -> tuple[Any, None]:
                return state, state

        with Echo() as server:
            assert server.call({}) is None


# -------------------------------------------------------------------------- cast


class TestCast:
    def test_casts_are_handled_in_order_and_update_the_state(self, counter: Counter) -> None:
        for _ in range(100):
            counter.cast({"action": "increment"})
        assert counter.call({"action": "get"}) == 100

    def test_an_unhandled_cast_passed_to_super_logs_a_warning_and_keeps_the_state(
        self, counter: Counter, caplog: pytest.LogCaptureFixture
    ) -> None:
        counter.cast({"action": "increment"})
        counter.cast({"action": "unknown"})
        assert counter.call({"action": "get"}) == 1
        [record] = [r for r in caplog.records if "does not handle" in r.getMessage()]
        assert record.levelno == logging.WARNING
        assert "{'action': 'unknown'}" in record.getMessage()

    def test_handle_cast_raising_is_logged_with_its_traceback_and_the_state_is_kept(
        self, counter: Counter, caplog: pytest.LogCaptureFixture
    ) -> None:
        counter.cast({"action": "increment"})
        counter.cast({"action": "fail"})
        counter.cast({"action": "increment"})
        assert counter.call({"action": "get"}) == 2
        [record] = [r for r in caplog.records if "handle_cast" in r.getMessage()]
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)

    def test_cast_on_a_never_started_server_raises_genserver_error_saying_so(self) -> None:
        with pytest.raises(
            GenServerError,
            match=r"cast\(\{'action': 'increment'\}\) to Counter failed: the server was never "
            r"started; call start\(\) first",
        ):
            Counter().cast({"action": "increment"})

    def test_cast_on_a_stopped_server_raises_genserver_error_naming_the_state(self) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(
            GenServerError,
            match=r"the server is stopped \(exit reason 'normal'\); create and start a new",
        ):
            server.cast({"action": "increment"})


# -------------------------------------------------------------------------- call


class TestCall:
    def test_call_returns_the_reply_and_keeps_the_new_state(self, counter: Counter) -> None:
        assert counter.call({"action": "increment_and_get"}) == 1
        assert counter.call({"action": "increment_and_get"}) == 2
        assert counter.call({"action": "get"}) == 2

    def test_handle_call_raising_raises_genserver_error_with_the_original_chained(
        self, counter: Counter
    ) -> None:
        counter.cast({"action": "increment"})
        with pytest.raises(
            GenServerError,
            match=r"Counter.handle_call\(\{'action': 'set_then_fail'\}\) raised "
            r"ValueError\('failed after changing a local'\); the server keeps running with "
            r"its previous state",
        ) as info:
            counter.call({"action": "set_then_fail"})
        assert isinstance(info.value.__cause__, ValueError)
        assert counter.call({"action": "get"}) == 1

    def test_handle_call_returning_a_non_tuple_raises_genserver_error_and_keeps_the_state(
        self, counter: Counter
    ) -> None:
        with pytest.raises(
            GenServerError, match=r"returned 'not a tuple'; it must return a \(reply, new_state\)"
        ):
            counter.call({"action": "bad_return"})
        assert counter.call({"action": "get"}) == 0

    def test_call_timeout_raises_genserver_timeout_error_promptly(
        self, counter: Counter, pool: ThreadPoolExecutor
    ) -> None:
        counter.cast({"action": "block"})
        assert counter.entered.wait(WAIT)
        started = time.monotonic()
        with pytest.raises(
            GenServerTimeoutError,
            match=r"call\(\{'action': 'get'\}, timeout=0.05\) to Counter <PID 0\.\d+> timed "
            r"out: no reply within 0.05 s .* late reply will be discarded",
        ) as info:
            counter.call({"action": "get"}, timeout=0.05)
        assert time.monotonic() - started < 1.0
        assert isinstance(info.value, TimeoutError)

    def test_a_late_reply_after_a_timeout_is_discarded(self, counter: Counter) -> None:
        with pytest.raises(GenServerTimeoutError):
            counter.call({"action": "block"}, timeout=0.05)
        counter.gate.set()
        # The blocked call's state change happened; its reply ("late") went nowhere.
        assert counter.call({"action": "get"}) == 100
        assert counter.call({"action": "increment_and_get"}) == 101

    def test_call_on_a_stopped_server_raises_genserver_error_naming_the_state(self) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(
            GenServerError,
            match=r"call\(\{'action': 'get'\}\) to Counter failed: the server is stopped "
            r"\(exit reason 'normal'\)",
        ):
            server.call({"action": "get"})

    def test_call_on_a_never_started_server_raises_genserver_error_saying_so(self) -> None:
        with pytest.raises(GenServerError, match="the server was never started; call start"):
            Counter().call({"action": "get"})

    def test_calling_the_same_server_from_inside_its_handler_raises_instead_of_hanging(
        self,
    ) -> None:
        class Selfish(GenServer[int]):
            def init(self) -> int:
                return 0

            def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
                if message["via"] == "method":
                    try:
                        self.call({"via": "again"})
                    except GenServerError as e:
                        return str(e), state
                try:
                    anyotp.sync.call(self.pid, {"via": "again"})
                except GenServerError as e:
                    return str(e), state
                return "no error", state

        with Selfish() as server:
            for via in ("method", "function"):
                answer = server.call({"via": via}, timeout=WAIT)
                assert "from inside one of its own handlers would deadlock" in answer

    def test_many_threads_calling_one_server_each_get_their_own_replies(
        self, counter: Counter, pool: ThreadPoolExecutor
    ) -> None:
        def client() -> list[int]:
            return [counter.call({"action": "increment_and_get"}) for _ in range(100)]

        results = [f.result(WAIT) for f in [pool.submit(client) for _ in range(8)]]
        replies = [r for rs in results for r in rs]
        assert sorted(replies) == list(range(1, 801))
        assert all(rs == sorted(rs) for rs in results)  # each client sees its own order


# -------------------------------------------------------------------------- stop


class TestStop:
    def test_stop_answers_every_queued_call_then_runs_terminate_and_joins(
        self, counter: Counter, pool: ThreadPoolExecutor
    ) -> None:
        blocked = pool.submit(counter.call, {"action": "block"})
        assert counter.entered.wait(WAIT)
        queued = [pool.submit(counter.call, {"action": "increment_and_get"}) for _ in range(3)]
        wait_until(lambda: queue_len(counter) == 3, "three calls are queued")
        stopping = pool.submit(counter.stop)
        wait_until(lambda: queue_len(counter) == 4, "the stop request is queued")
        # A call through the PID skips the client-side check and queues behind the stop.
        too_late = pool.submit(anyotp.sync.call, counter.pid, {"action": "get"})
        wait_until(lambda: queue_len(counter) == 5, "the late call is queued")
        with pytest.raises(GenServerError, match=r"the server is stopping \(stop\(\) was called\)"):
            counter.call({"action": "get"})

        counter.gate.set()
        assert blocked.result(WAIT) == "late"
        assert sorted(f.result(WAIT) for f in queued) == [101, 102, 103]
        with pytest.raises(
            GenServerError, match="failed: the server stopped with exit reason 'normal' before"
        ):
            too_late.result(WAIT)
        assert stopping.result(WAIT) is None
        assert counter.terminated_with == [103]
        assert not server_thread_alive(counter)

    def test_stop_with_a_timeout_raises_timeout_error_when_a_handler_blocks(
        self, counter: Counter
    ) -> None:
        counter.cast({"action": "block"})
        assert counter.entered.wait(WAIT)
        with pytest.raises(
            GenServerTimeoutError,
            match=r"Counter.stop\(timeout=0.05\): the server did not stop within 0.05 s .* "
            "the stop request stands",
        ) as info:
            counter.stop(timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        counter.gate.set()
        wait_until(lambda: not is_alive(counter.pid), "the standing stop request stops it")
        assert counter.terminated_with == [0]

    def test_stop_on_a_never_started_server_raises_genserver_error_saying_so(self) -> None:
        with pytest.raises(
            GenServerError,
            match=r"Counter.stop\(\) failed: the server was never started; there is nothing",
        ):
            Counter().stop()

    def test_stop_twice_raises_genserver_error_saying_the_server_is_stopped(self) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(
            GenServerError, match=r"the server is stopped \(exit reason 'normal'\); there is"
        ):
            server.stop()

    def test_terminate_raising_is_logged_and_stop_still_returns(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class BadTerminate(GenServer[int]):
            def init(self) -> int:
                return 7

            def terminate(self, state: int) -> None:
                raise OSError("disk gone")

        server = BadTerminate()
        server.start()
        server.stop(timeout=WAIT)
        assert not is_alive(server.pid)
        [record] = [r for r in caplog.records if "terminate() raised" in r.getMessage()]
        assert isinstance(record.exc_info[1] if record.exc_info else None, OSError)

    def test_stop_from_inside_a_handler_stops_after_the_current_message(self) -> None:
        class Quitter(GenServer[int]):
            def init(self) -> int:
                self.terminated = threading.Event()
                return 0

            def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
                self.stop()
                return "stopping", state

            def terminate(self, state: int) -> None:
                self.terminated.set()

        server = Quitter()
        server.start()
        assert server.call({}, timeout=WAIT) == "stopping"
        assert server.terminated.wait(WAIT)
        wait_until(lambda: not is_alive(server.pid), "the server is dead")


# ------------------------------------------------------------- context manager


class TestContextManager:
    def test_a_with_block_starts_the_server_and_stops_it_at_the_end(self) -> None:
        with Counter() as server:
            assert is_alive(server.pid)
            server.cast({"action": "increment"})
        assert not is_alive(server.pid)
        assert server.terminated_with == [1]

    def test_a_with_block_stops_the_server_when_its_body_raises(self) -> None:
        server = Counter()
        with pytest.raises(KeyError), server:
            raise KeyError("boom")
        assert not is_alive(server.pid)
        assert server.terminated_with == [0]

    def test_a_with_block_on_a_started_server_keeps_its_init_arguments(self) -> None:
        server = Counter()
        server.start(10)
        with server:
            assert server.call({"action": "get"}) == 10
        assert server.terminated_with == [10]

    def test_stopping_inside_the_with_block_is_fine(self) -> None:
        with Counter() as server:
            server.stop()
        assert server.terminated_with == [0]


# ----------------------------------------------------------------------- threads


class TestThreads:
    def test_each_server_runs_its_handlers_on_its_own_thread(self) -> None:
        with Counter() as a, Counter() as b:
            thread_a = a.call({"action": "thread"})
            thread_b = b.call({"action": "thread"})
            assert len({thread_a, thread_b, threading.get_ident()}) == 3
            assert a.call({"action": "thread"}) == thread_a

    def test_a_blocked_handler_does_not_stall_another_sync_server(self) -> None:
        with Counter() as slow, Counter() as fast:
            slow.cast({"action": "block"})
            assert slow.entered.wait(WAIT)
            assert fast.call({"action": "increment_and_get"}, timeout=WAIT) == 1
            slow.gate.set()

    def test_a_call_is_a_thread_hand_off_not_a_poll_interval(self, counter: Counter) -> None:
        latencies = []
        for _ in range(200):
            started = time.perf_counter()
            counter.call({"action": "get"})
            latencies.append(time.perf_counter() - started)
        assert statistics.median(latencies) < 0.005

    def test_server_threads_are_daemons_named_after_the_server(self, counter: Counter) -> None:
        [thread] = [t for t in threading.enumerate() if t.name.endswith(repr(counter.pid))]
        assert thread.name == f"anyotp.sync Counter {counter.pid!r}"
        assert thread.daemon


# ------------------------------------------------------------ module call / cast


class TestModuleCallAndCast:
    def test_call_and_cast_reach_a_server_by_pid_and_by_registered_name(
        self, counter: Counter
    ) -> None:
        assert anyotp.register("sync-counter", counter.pid)
        anyotp.sync.cast(counter.pid, {"action": "increment"})
        anyotp.sync.cast("sync-counter", {"action": "increment"})
        assert anyotp.sync.call("sync-counter", {"action": "get"}, timeout=WAIT) == 2
        assert anyotp.sync.call(counter.pid, {"action": "get"}) == 2
        counter.stop()
        assert whereis("sync-counter") is None

    def test_call_to_an_unregistered_name_raises_genserver_error(self) -> None:
        with pytest.raises(
            GenServerError, match="to 'nobody' failed: no process is registered under that name"
        ):
            anyotp.sync.call("nobody", {"action": "get"})

    def test_a_call_to_a_dead_pid_raises_callnoproc_and_a_cast_is_dropped(self) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(GenServerError, match="that process is not alive") as e:
            anyotp.sync.call(server.pid, {"action": "get"})
        assert isinstance(e.value, anyotp.CallNoProc)
        assert isinstance(e.value, LookupError)
        assert e.value.reason == "noproc"
        anyotp.sync.cast(server.pid, {"action": "get"})  # dropped, as in OTP

    def test_a_request_of_the_wrong_type_sent_by_pid_fails_the_caller_not_the_server(
        self, counter: Counter, caplog: pytest.LogCaptureFixture
    ) -> None:
        with pytest.raises(GenServerError, match=r"takes a dict, got str 'get'"):
            anyotp.sync.call(counter.pid, "get")
        anyotp.sync.cast(counter.pid, "increment")
        assert counter.call({"action": "get"}) == 0
        assert any("dropped a cast" in r.getMessage() for r in caplog.records)

    def test_call_with_a_timeout_on_a_blocked_server_raises_genserver_timeout_error(
        self, counter: Counter
    ) -> None:
        counter.cast({"action": "block"})
        assert counter.entered.wait(WAIT)
        with pytest.raises(GenServerTimeoutError, match=r"timeout=0.01\) to Counter"):
            anyotp.sync.call(counter.pid, {"action": "get"}, timeout=0.01)

    def test_a_timeout_that_is_not_a_number_is_refused_and_an_int_one_is_fine(
        self, counter: Counter
    ) -> None:
        request = {"action": "get"}
        with pytest.raises(
            TypeError, match=r"call\(\{'action': 'get'\}\): timeout must be a number.*bool"
        ):
            anyotp.sync.call(counter.pid, request, timeout=True)
        with pytest.raises(TypeError, match=r"timeout must be a number.*got str '1'"):
            anyotp.sync.call(counter.pid, request, timeout="1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"timeout must be >= 0.*nan"):
            anyotp.sync.call(counter.pid, request, timeout=float("nan"))
        with pytest.raises(TypeError, match=r"Counter.stop\(\): timeout must be a number"):
            counter.stop(timeout="soon")  # type: ignore[arg-type]
        assert anyotp.sync.call(counter.pid, request, timeout=int(WAIT)) == 0  # still running
        assert anyotp.sync.call(counter.pid, request, timeout=10**400) == 0  # forever

    def test_target_of_the_wrong_type_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match="expected a PID, a registered name"):
            anyotp.sync.call(42, {})  # type: ignore[arg-type]


# ------------------------------------------------------------- the process core


class Recorder(GenServer[list[Any]]):
    """Keeps every info message; can monitor and link on request."""

    def init(self) -> list[Any]:
        self.terminated = threading.Event()
        return []

    def handle_call(self, message: dict[str, Any], state: list[Any]) -> tuple[Any, list[Any]]:
        if "monitor" in message:
            return anyotp.monitor(message["monitor"]), state
        if "link" in message:
            anyotp.link(message["link"])
            return "linked", state
        if "self" in message:
            return anyotp.self_pid(), state
        return list(state), state

    def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
        return [*state, message]

    def terminate(self, state: list[Any]) -> None:
        self.terminated.set()


class TestProcessCore:
    def test_inside_a_handler_self_pid_is_the_servers_pid(self) -> None:
        with Recorder() as server:
            assert server.call({"self": True}) == server.pid

    def test_a_sync_server_can_monitor_another_and_gets_its_down_message(self) -> None:
        with Recorder() as watcher:
            watched = Counter()
            watched.start()
            ref = watcher.call({"monitor": watched.pid})
            watched.stop()
            wait_until(lambda: watcher.call({}), "the DOWN message arrived")
            assert watcher.call({}) == [("DOWN", ref, "process", watched.pid, "normal")]

    def test_an_exit_signal_stops_a_server_that_does_not_trap_exits_after_terminate(
        self,
    ) -> None:
        server = Recorder()
        server.start()
        exit_process(server.pid, "boom")
        assert server.terminated.wait(WAIT)
        wait_until(lambda: not is_alive(server.pid), "the server is dead")
        assert server.exit_reason == "boom"
        with pytest.raises(GenServerError, match=r"the server is stopped \(exit reason 'boom'\)"):
            server.call({})

    def test_a_server_that_traps_exits_gets_EXIT_messages_in_handle_info(self) -> None:
        class Trapper(Recorder):
            trap_exit = True

        with Trapper() as server:
            exit_process(server.pid, "boom")
            wait_until(lambda: server.call({}), "the EXIT message arrived")
            assert server.call({}) == [("EXIT", None, "boom")]

    def test_a_linked_sync_server_exits_with_the_reason_of_its_crashed_link(self) -> None:
        a = Recorder()
        a.start()
        with Recorder() as b:
            assert a.call({"link": b.pid}) == "linked"
            exit_process(b.pid, "crashed")
            wait_until(lambda: not is_alive(a.pid), "the linked server exited")
        assert a.exit_reason == "crashed"
        assert a.terminated.is_set()

    def test_kill_ends_the_process_at_once_even_with_a_handler_blocked(
        self, counter: Counter, pool: ThreadPoolExecutor
    ) -> None:
        blocked = pool.submit(counter.call, {"action": "block"})
        assert counter.entered.wait(WAIT)
        exit_process(counter.pid, "kill")
        assert not is_alive(counter.pid)
        assert counter.exit_reason == "killed"
        with pytest.raises(
            GenServerError, match="the server stopped with exit reason 'killed' before replying"
        ):
            blocked.result(WAIT)
        # The abandoned thread ends when its handler returns, without terminate.
        counter.gate.set()
        wait_until(lambda: not server_thread_alive(counter), "the abandoned thread ended")
        assert counter.terminated_with == []

    def test_kill_while_stop_waits_makes_stop_return_without_joining_the_stuck_thread(
        self, counter: Counter, pool: ThreadPoolExecutor
    ) -> None:
        counter.cast({"action": "block"})
        assert counter.entered.wait(WAIT)
        stopping = pool.submit(counter.stop)
        wait_until(lambda: queue_len(counter) == 1, "the stop request is queued")
        exit_process(counter.pid, "kill")
        assert stopping.result(WAIT) is None
        assert server_thread_alive(counter)  # still in its handler, abandoned
        counter.gate.set()
        wait_until(lambda: not server_thread_alive(counter), "the abandoned thread ended")
        assert counter.terminated_with == []

    def test_kill_of_an_idle_server_ends_its_thread_too(self, counter: Counter) -> None:
        exit_process(counter.pid, "kill")
        assert not is_alive(counter.pid)
        wait_until(lambda: not server_thread_alive(counter), "the idle thread ended")
        assert counter.terminated_with == []

    def test_get_state_and_process_info_see_the_sync_server(self, counter: Counter) -> None:
        counter.cast({"action": "increment"})
        assert counter.call({"action": "get"}) == 1
        info = process_info(counter.pid)
        assert info is not None
        assert (info["class"], info["status"], info["state"]) == ("Counter", "running", 1)


# --------------------------------------------------------------- async <-> sync


class Stack(anyotp.GenServer):
    """An async server for sync code to call."""

    async def init(self) -> list[Any]:
        return []

    async def handle_call(self, request: Any, from_: Any, state: list[Any]) -> Any:
        if request == "pop":
            return (state[0], state[1:]) if state else (None, state)
        return len(state), state

    async def handle_cast(self, request: Any, state: list[Any]) -> list[Any]:
        return [request, *state]


class Forwarder(GenServer[None]):
    """A sync server whose handler calls an async server."""

    def handle_call(self, message: dict[str, Any], state: None) -> tuple[Any, None]:
        anyotp.sync.cast(message["to"], message["push"])
        return anyotp.sync.call(message["to"], "pop", timeout=WAIT), state


@pytest.mark.anyio
class TestAsyncAndSync:
    async def test_async_code_calls_a_sync_server_with_anyotp_call(self) -> None:
        server = Counter()
        await anyio.to_thread.run_sync(server.start)
        try:
            await anyotp.cast(server.pid, {"action": "increment"})
            assert await anyotp.call(server.pid, {"action": "increment_and_get"}) == 2
        finally:
            await anyio.to_thread.run_sync(server.stop)

    async def test_an_async_call_whose_sync_handler_raises_gets_genserver_error(self) -> None:
        server = Counter()
        await anyio.to_thread.run_sync(server.start)
        try:
            with pytest.raises(GenServerError, match=r"handle_call\(\{'action': 'fail'\}\)"):
                await anyotp.call(server.pid, {"action": "fail"})
            assert await anyotp.call(server.pid, {"action": "get"}) == 0
        finally:
            await anyio.to_thread.run_sync(server.stop)

    async def test_a_plain_thread_calls_an_async_genserver_with_sync_call(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Stack.start(task_group=tg)

            def client() -> Any:
                anyotp.sync.cast(pid, "x")
                return anyotp.sync.call(pid, "pop", timeout=WAIT)

            assert await anyio.to_thread.run_sync(client) == "x"
            tg.cancel_scope.cancel()

    async def test_a_sync_handler_calls_an_async_genserver(self) -> None:
        async with anyio.create_task_group() as tg:
            stack = await Stack.start(task_group=tg)
            server = Forwarder()
            await anyio.to_thread.run_sync(server.start)
            try:
                reply = await anyotp.call(server.pid, {"to": stack, "push": "y"})
                assert reply == "y"
            finally:
                await anyio.to_thread.run_sync(server.stop)
            tg.cancel_scope.cancel()

    async def test_blocking_sync_calls_from_an_event_loop_thread_raise_genserver_error(
        self,
    ) -> None:
        server = Counter()
        with pytest.raises(
            GenServerError,
            match=r"Counter.start\(\) blocks the calling thread, and this thread runs an event "
            r"loop: .* start it in a worker thread .* or let a Supervisor start it",
        ):
            server.start()
        assert not server_started(server)
        await anyio.to_thread.run_sync(server.start)
        try:
            with pytest.raises(
                GenServerError,
                match=r"call\(\{'action': 'get'\}\) to Counter <PID 0\.\d+> blocks the calling "
                r"thread, .* use `await anyotp.call\(pid, request, timeout=...\)`",
            ):
                server.call({"action": "get"})
            with pytest.raises(GenServerError, match=r"to Counter <PID 0\.\d+> blocks"):
                anyotp.sync.call(server.pid, {"action": "get"})
            with pytest.raises(
                GenServerError,
                match=r"Counter.stop\(\) blocks .* `await anyio.to_thread.run_sync\(server.stop\)`",
            ):
                server.stop()
            server.cast({"action": "increment"})  # never blocks: fine anywhere
            anyotp.sync.cast(server.pid, {"action": "increment"})
            assert await anyotp.call(server.pid, {"action": "get"}) == 2
        finally:
            await anyio.to_thread.run_sync(server.stop)

    async def test_a_blocked_sync_handler_does_not_stall_async_servers(self) -> None:
        async with anyio.create_task_group() as tg:
            stack = await Stack.start(task_group=tg)
            server = Counter()
            await anyio.to_thread.run_sync(server.start)
            try:
                server.cast({"action": "block"})
                await anyio.to_thread.run_sync(server.entered.wait, WAIT)
                await anyotp.cast(stack, "z")
                assert await anyotp.call(stack, "pop", timeout=WAIT) == "z"
            finally:
                server.gate.set()
                await anyio.to_thread.run_sync(server.stop)
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------ supervision


class Supervised(Counter):
    instances: list[Supervised] = []  # noqa: RUF012

    def init(self, start: int = 0, *, gate: threading.Event | None = None) -> int:
        Supervised.instances.append(self)
        return super().init(start, gate=gate)


@pytest.fixture
def supervised() -> Iterator[type[Supervised]]:
    Supervised.instances = []
    yield Supervised
    for server in Supervised.instances:
        server.gate.set()


async def child_pid(sup: anyotp.PID) -> anyotp.PID:
    [info] = await Supervisor.which_children(sup)
    assert info.pid is not None
    return info.pid


@pytest.mark.anyio
class TestSupervision:
    async def test_a_sync_server_runs_as_a_childspec_child_of_an_async_supervisor(
        self, supervised: type[Supervised]
    ) -> None:
        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="counter", actor_class=supervised, args=(5,))]

        async with anyio.create_task_group() as tg:
            sup = await App.start(task_group=tg)
            pid = await child_pid(sup)
            assert await anyotp.call(pid, {"action": "increment_and_get"}) == 6
            assert await anyio.to_thread.run_sync(anyotp.sync.call, pid, {"action": "get"}) == 6
            tg.cancel_scope.cancel()
        [server] = supervised.instances
        assert server.terminated_with == [6]  # the supervisor's shutdown ran terminate

    async def test_a_killed_sync_child_is_restarted_with_a_new_pid(
        self, supervised: type[Supervised]
    ) -> None:
        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="counter", actor_class=supervised)]

        async with anyio.create_task_group() as tg:
            sup = await App.start(task_group=tg)
            first = await child_pid(sup)
            await anyotp.call(first, {"action": "increment_and_get"})
            exit_process(first, "kill")
            with anyio.fail_after(WAIT):
                while (second := await child_pid(sup)) == first:
                    await anyio.sleep(0.005)
            assert await anyotp.call(second, {"action": "get"}) == 0
            tg.cancel_scope.cancel()
        assert len(supervised.instances) == 2

    async def test_a_sync_child_stuck_past_its_shutdown_timeout_is_killed(
        self, supervised: type[Supervised]
    ) -> None:
        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="counter", actor_class=supervised, shutdown=0.05)]

        async with anyio.create_task_group() as tg:
            sup = await App.start(task_group=tg)
            pid = await child_pid(sup)
            await anyotp.cast(pid, {"action": "block"})
            [server] = supervised.instances
            await anyio.to_thread.run_sync(server.entered.wait, WAIT)
            tg.cancel_scope.cancel()
        assert server.exit_reason == "killed"
        assert server.terminated_with == []
        server.gate.set()
        await anyio.to_thread.run_sync(
            lambda: wait_until(lambda: not server_thread_alive(server), "the thread ended")
        )

    async def test_a_sync_child_whose_init_fails_makes_the_supervisor_fail_to_start(
        self,
    ) -> None:
        class Broken(GenServer[int]):
            def init(self) -> int:
                raise ValueError("bad config")

        class App(Supervisor):
            def child_specs(self) -> list[ChildSpec]:
                return [ChildSpec(id="broken", actor_class=Broken)]

        async with anyio.create_task_group() as tg:
            with pytest.raises(anyotp.StartError) as info:
                await App.start(task_group=tg)
            cause = info.value.__cause__
            assert isinstance(cause, anyotp.StartError)
            assert isinstance(cause.__cause__, ValueError)


# ---------------------------------------------------------------- interpreter exit


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestInterpreterExit:
    def test_servers_still_running_at_exit_are_stopped_newest_first_with_terminate(
        self,
    ) -> None:
        result = run_python(
            """
            from anyotp.sync import GenServer

            class Server(GenServer[str]):
                def init(self, name: str) -> str:
                    return name

                def terminate(self, state: str) -> None:
                    print("terminate", state, flush=True)

            Server().start("first")
            Server().start("second")
            print("main done", flush=True)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "main done\nterminate second\nterminate first\n"

    def test_a_server_stuck_in_a_handler_does_not_keep_the_interpreter_alive(self) -> None:
        result = run_python(
            """
            import threading
            import anyotp.sync._server as server_module
            from anyotp.sync import GenServer

            server_module.AT_EXIT_STOP_TIMEOUT = 0.1
            entered = threading.Event()

            class Stuck(GenServer[None]):
                def handle_cast(self, message, state):
                    entered.set()
                    threading.Event().wait()  # forever
                    return state

            server = Stuck()
            server.start()
            server.cast({})
            entered.wait()
            print("main done", flush=True)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "main done\n"
        assert "did not stop within 0.1 s at interpreter exit" in result.stderr


# ------------------------------------------------------------------------ exports


class TestExports:
    def test_anyotp_sync_exports_the_seeds_names_and_call_and_cast(self) -> None:
        assert anyotp.sync.__all__ == [
            "GenServer",
            "GenServerError",
            "GenServerTimeoutError",
            "LoopThread",
            "TypedGenServer",
            "call",
            "cast",
            "loop_thread",
        ]
        for name in anyotp.sync.__all__:
            assert getattr(anyotp.sync, name) is not None

    def test_the_errors_are_the_same_classes_as_anyotps(self) -> None:
        assert anyotp.sync.GenServerError is anyotp.GenServerError
        assert anyotp.sync.GenServerTimeoutError is anyotp.GenServerTimeoutError


class TestStructuredErrors:
    def test_a_call_timeout_carries_server_request_timeout_and_reason(
        self, counter: Counter
    ) -> None:
        request = {"action": "block"}
        with pytest.raises(GenServerTimeoutError) as info:
            anyotp.sync.call(counter.pid, request, timeout=0.05)
        err = info.value
        assert (err.server, err.request, err.timeout, err.reason) == (
            counter.pid,
            request,
            0.05,
            "timeout",
        )

    def test_a_call_to_an_unknown_name_says_noproc(self) -> None:
        with pytest.raises(GenServerError) as info:
            anyotp.sync.call("nobody-here", {"action": "get"}, timeout=1)
        assert info.value.reason == "noproc"
        assert info.value.server == "nobody-here"


# ------------------------------------------------------------ timers and self-exit


class TestCallFailureTypes:
    def test_a_call_to_a_dead_server_is_a_genserver_error_a_callnoproc_and_a_lookup_error(
        self,
    ) -> None:
        server = Counter()
        server.start()
        server.stop()
        with pytest.raises(GenServerError, match="that process is not alive") as info:
            anyotp.sync.call(server.pid, {"action": "get"})
        assert isinstance(info.value, anyotp.CallNoProc)
        assert isinstance(info.value, LookupError)

    def test_a_call_timeout_is_a_genserver_timeout_error_a_calltimeout_and_a_timeout_error(
        self, counter: Counter
    ) -> None:
        counter.cast({"action": "block"})
        assert counter.entered.wait(WAIT)
        with pytest.raises(GenServerTimeoutError, match="timed out") as info:
            anyotp.sync.call(counter.pid, {"action": "get"}, timeout=0.01)
        assert isinstance(info.value, GenServerError)
        assert isinstance(info.value, anyotp.CallTimeout)
        assert isinstance(info.value, TimeoutError)


class Timed(Recorder):
    """``{"after": (msg, seconds)}`` starts a timer to itself; ``{"cancel": True}``
    cancels the last one and returns what ``cancel_timer`` said."""

    def handle_call(self, message: dict[str, Any], state: list[Any]) -> tuple[Any, list[Any]]:
        if "after" in message:
            msg, seconds = message["after"]
            self.timer = anyotp.send_after(anyotp.self_pid(), msg, seconds)
            return self.timer, state
        if "cancel" in message:
            return anyotp.cancel_timer(self.timer), state
        return super().handle_call(message, state)


class TestTimersInHandlers:
    def test_send_after_in_a_sync_handler_delivers_to_handle_info(self) -> None:
        with Timed() as server:
            server.call({"after": ("tick", 0.05)})
            wait_until(lambda: server.call({}), "the timer fired")
            assert server.call({}) == ["tick"]

    def test_cancel_timer_in_a_sync_handler_stops_the_message(self) -> None:
        with Timed() as server:
            ref = server.call({"after": ("tick", 5.0)})
            left = server.call({"cancel": True})
            assert left is not None
            assert 0 < left <= 5.0
            assert ref.cancelled
            assert server.call({"cancel": True}) is None  # already cancelled

    def test_a_timer_dies_with_its_sync_server(self) -> None:
        server = Timed()
        server.start()
        ref = server.call({"after": ("tick", 5.0)})
        assert not ref.cancelled
        server.stop()
        assert ref.cancelled  # it will never fire
        assert anyotp.cancel_timer(ref) is None


class SelfExit(GenServer[list[Any]]):
    """``{"die": reason}`` sends the server an exit signal from its own handler."""

    trap = False

    def init(self, log: list[Any]) -> list[Any]:
        self.log = log
        self.trap_exit = self.trap
        self.gate = threading.Event()
        return []

    def handle_cast(self, message: dict[str, Any], state: list[Any]) -> list[Any]:
        if "gate" in message:
            assert self.gate.wait(WAIT)
        elif "die" in message:
            self.log.append("before")
            anyotp.exit_process(anyotp.self_pid(), message["die"])
            self.log.append("after")
        else:
            self.log.append(message)
        return state

    def handle_call(self, message: dict[str, Any], state: list[Any]) -> tuple[Any, list[Any]]:
        return None, state

    def handle_info(self, message: Any, state: list[Any]) -> list[Any]:
        self.log.append(message)
        return state

    def terminate(self, state: list[Any]) -> None:
        self.log.append("terminate")


class TestSelfExit:
    @pytest.mark.parametrize(
        ("reason", "exit_reason", "after"),
        [("boom", "boom", ["terminate"]), ("kill", "killed", [])],
    )
    def test_an_exit_signal_to_itself_ends_the_handler_and_skips_queued_messages(
        self, reason: str, exit_reason: str, after: list[Any]
    ) -> None:
        log: list[Any] = []
        server = SelfExit()
        server.start(log)
        server.cast({"gate": True})  # holds the server while the next two queue up
        server.cast({"die": reason})
        server.cast({"next": True})
        server.gate.set()
        wait_until(lambda: not is_alive(server.pid), "the server exited")
        wait_until(lambda: not server_thread_alive(server), "the server thread ended")
        assert server.exit_reason == exit_reason
        assert log == ["before", *after]

    def test_a_trapping_sync_server_gets_its_own_exit_signal_as_a_message(self) -> None:
        class Trapping(SelfExit):
            trap = True

        log: list[Any] = []
        server = Trapping()
        server.start(log)
        with server:
            server.cast({"die": "boom"})
            server.cast({"next": True})
            server.call({})
            assert log == ["before", "after", {"next": True}, ("EXIT", server.pid, "boom")]
            assert is_alive(server.pid)

    @pytest.mark.parametrize(("reason", "exit_reason"), [("boom", "boom"), ("kill", "killed")])
    def test_an_exit_signal_to_itself_in_init_fails_start_with_that_reason(
        self, reason: str, exit_reason: str
    ) -> None:
        class Quitter(GenServer[int]):
            def init(self) -> int:
                anyotp.exit_process(anyotp.self_pid(), reason)
                return 0

        server = Quitter()
        with pytest.raises(
            GenServerError, match=f"exited with reason '{exit_reason}' before init returned"
        ):
            server.start()
        assert server.exit_reason == exit_reason

    def test_an_exit_signal_to_itself_in_terminate_ends_the_server_with_that_reason(
        self,
    ) -> None:
        class Renamer(GenServer[int]):
            def terminate(self, state: int) -> None:
                anyotp.exit_process(anyotp.self_pid(), "renamed")

        server = Renamer()
        server.start()
        server.stop(WAIT)
        assert server.exit_reason == "renamed"
        assert not server_thread_alive(server)
