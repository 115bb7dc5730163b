"""The public API type-checks as documented: ``mypy --strict`` on small programs.

Every target form (``Target``) is accepted where a process is named; the state type
of ``GenServer[State]``, ``Agent[T]`` and ``StateMachine[S, D]`` reaches the
callbacks, so a callback that takes or returns the wrong type is an error; a plain
subclass (``class X(GenServer)``) stays valid, untyped.  Each line that must fail
ends with ``# E``; the test compares those lines with the lines mypy reports.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

ACCEPTED = """
from typing import Any

from anyotp import (
    PID, Agent, Directive, From, GenServer, KeepState, NextState, NoReply, Reply,
    StateMachine, Stop, Target, Via, call, cast, cast_nowait, exit_process, is_alive,
    link, monitor, send, send_nowait,
)
from anyotp.sync import call as sync_call


class Stack(GenServer[list[int]]):
    async def init(self, *items: int) -> list[int]:
        return list(items)

    async def handle_call(
        self, request: str, from_: From, state: list[int]
    ) -> tuple[int | None, list[int]] | Directive:
        if request == "later":
            return NoReply(state)
        if request == "stop":
            return Stop("normal", reply=None)
        if request == "reply":
            return Reply(None, state)
        return (state[0], state[1:]) if state else (None, state)

    async def handle_cast(self, request: int, state: list[int]) -> list[int]:
        return [request, *state]


class Untyped(GenServer):
    async def init(self) -> Any:
        return {}

    async def handle_cast(self, request: Any, state: Any) -> Any:
        return state


class Count(Agent[int]):
    async def init(self) -> int:
        return 0


class Door(StateMachine[str, dict[str, int]]):
    async def init(self) -> tuple[str, dict[str, int]]:
        return "locked", {}

    async def handle_event(
        self, event_type: Any, content: Any, state: str, data: dict[str, int]
    ) -> NextState[str, dict[str, int]] | KeepState[dict[str, int]]:
        if state == "locked":
            return NextState("open", data)
        return KeepState()


async def clients(pid: PID, registry: PID, target: Target) -> None:
    await call(Via(registry, "k"), "pop")
    await call(("via", registry, "k"), "pop")
    await call(("via", "names", "k"), "pop", timeout=None)
    await call(("global", "stack"), "pop")
    await call(pid, "pop")
    await call(target, "pop")
    await send("name", "hello")
    await send(Via("names", "k"), "hello")
    send_nowait(("via", "names", "k"), "hello")
    await cast("name", 1)
    cast_nowait(Via(registry, "k"), 1)
    link("name")
    monitor(("via", registry, "k"))
    exit_process(Via(registry, "k"), "kill")
    is_alive("name")
    await Stack.stop(Via(registry, "k"))
    n: int = await Agent.get("count", lambda v: 1)
    sync_call(("via", registry, "k"), {"op": "get"})
"""

REJECTED = """
from typing import Any

from anyotp import From, GenServer, KeepState, NextState, StateMachine, call, send


class WrongInit(GenServer[list[int]]):
    async def init(self) -> str:  # E
        return ""


class WrongState(GenServer[list[int]]):
    async def handle_cast(self, request: Any, state: str) -> str:  # E
        return state


class WrongReturn(GenServer[list[int]]):
    async def handle_call(self, request: Any, from_: From, state: list[int]) -> str:  # E
        return ""


class Door(StateMachine[str, int]):
    async def handle_event(
        self, event_type: Any, content: Any, state: str, data: int
    ) -> NextState[str, int] | KeepState[int]:
        return NextState("open", "not an int")  # E


async def clients() -> None:
    await call(42, "pop")  # E
    await send(3.5, "hello")  # E
"""


def _mypy(tmp_path: Path, name: str, source: str) -> tuple[int, str]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(path),
        ]
    )
    return status, out + err


class TestTyping:
    def test_every_target_form_and_typed_behaviour_passes_mypy_strict(self, tmp_path: Path) -> None:
        status, out = _mypy(tmp_path, "typed_accepted", ACCEPTED)
        assert status == 0, out

    def test_a_callback_of_the_wrong_state_type_or_a_bad_target_fails_mypy_strict(
        self, tmp_path: Path
    ) -> None:
        status, out = _mypy(tmp_path, "typed_rejected", REJECTED)
        expected = {
            n for n, line in enumerate(textwrap.dedent(REJECTED).splitlines(), 1) if "# E" in line
        }
        reported = {int(m) for m in re.findall(r"typed_rejected\.py:(\d+): error", out)}
        assert status == 1, out
        assert reported == expected, out
