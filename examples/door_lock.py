"""A code lock on a door, as a StateMachine (the door lock of gen_statem's guide).

The door is ``"locked"`` or ``"open"``.  Buttons are calls: typing the code opens
the door, and a *state timeout* locks it again.  A half-typed code is forgotten
after a pause (an *event timeout*: any event cancels it).  Buttons pressed while
the door is open are *postponed*: they wait, and are handled once it is locked.
With ``state_enter = True`` every state change runs an *enter call*, which is
where "locked" clears the typed digits and "open" starts its state timeout.

Run::

    python examples/door_lock.py          # or: python examples/door_lock.py trio
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from anyotp import KeepState, NextState, StateMachine, call, get_state

#: the door's data: the code, and the digits typed so far
Data = dict[str, str]


class Door(StateMachine[str, Data]):  # states are str, data is a Data
    state_enter = True  # handle_event("enter", old_state, state, data) on each change

    async def init(self, code: str) -> tuple[str, Data]:
        return "locked", {"code": code, "typed": ""}  # (state, data)

    async def handle_event(
        self, event_type: Any, content: Any, state: str, data: Data
    ) -> NextState[str, Data] | KeepState[Data]:
        match (event_type, content, state):
            case ("enter", _old, "locked"):
                print("door: locked")
                return KeepState({**data, "typed": ""})
            case ("enter", _old, "open"):
                print("door: open")
                # relock after 0.1 s unless the state changes first
                return KeepState(actions=[("state_timeout", 0.1, "lock")])
            case (("call", from_), ("button", digit), "locked"):
                typed = data["typed"] + digit
                if typed == data["code"]:
                    return NextState("open", data, [("reply", from_, "open")])
                if not data["code"].startswith(typed):
                    typed = ""  # a wrong digit: start again
                # forget a half-typed code after 0.2 s without another event
                return KeepState(
                    {**data, "typed": typed},
                    [("reply", from_, "locked"), ("timeout", 0.2, "forget")],
                )
            case ("timeout", "forget", "locked"):
                print(f"door: forgot {data['typed']!r}")
                return KeepState({**data, "typed": ""})
            case (("call", _from), ("button", _digit), "open"):
                return KeepState(actions=["postpone"])  # handled again once locked
            case ("state_timeout", "lock", "open"):
                return NextState("locked", data)
        return KeepState()  # anything else (a stray message): ignored

    async def terminate(self, reason: Any, state: Any) -> None:
        print(f"door: terminate({reason!r}, {state!r})")  # state is (state, data)


async def press(door: Any, buttons: str) -> None:
    for digit in buttons:
        print(f"press {digit} -> {await call(door, ('button', digit))}")


async def main() -> None:
    async with anyio.create_task_group() as tg:
        door = await Door.start("123", task_group=tg)
        await press(door, "12")
        while (await get_state(door))[1]["typed"]:  # pause until the door forgets "12"
            await anyio.sleep(0.01)
        await press(door, "123")
        await press(door, "9")  # the door is open: this waits until it locks again
        tg.cancel_scope.cancel()  # stops the door: terminate runs


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
