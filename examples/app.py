"""An application: a supervision tree run as the whole program by ``anyotp.run``.

::

    App (Supervisor, rest_for_one)
    ├── totals   Totals       an Agent, registered as "totals"
    └── counter  WordCounter  counts the words of one line per tick, into "totals"

When the counter has counted every line it casts ``"done"`` to the App, which
returns ``Stop("normal")``: the App stops its children in reverse start order
(counter, then totals; each one's ``terminate`` runs), then runs its own
``terminate``, and ``run`` returns exit status 0.  Press Ctrl-C (SIGINT) or send
SIGTERM meanwhile and the same orderly stop happens, also with status 0.

Run::

    python examples/app.py; echo "exit status $?"      # or: python examples/app.py trio
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import anyotp
from anyotp import (
    PID,
    Agent,
    ChildSpec,
    GenServer,
    RestartStrategy,
    Stop,
    Supervisor,
    cancel_timer,
    cast,
    send_interval,
)

LINES = [
    "let it crash",
    "a supervisor restarts what crashes",
    "let the supervisor decide",
]


class Totals(Agent[Counter[str]]):
    """Word counts, kept apart from the worker so that a worker crash loses nothing."""

    async def init(self) -> Counter[str]:
        return Counter()

    async def terminate(self, reason: Any, state: Counter[str]) -> None:
        print(f"totals: terminate({reason!r}); top words: {state.most_common(2)}")


class WordCounter(GenServer[list[str]]):
    """Counts one line per tick; tells the app when every line is counted."""

    async def init(self, app: PID, lines: list[str]) -> list[str]:
        self.app = app
        self.ticker = send_interval(self.pid, "tick", 0.02)
        print(f"counter: {len(lines)} lines to count")
        return lines

    async def handle_info(self, message: Any, lines: list[str]) -> list[str]:
        if message == "tick" and lines:
            words = lines[0].split()
            await Agent.update("totals", lambda totals: totals + Counter(words))
            if len(lines) == 1:  # that was the last line
                cancel_timer(self.ticker)
                print("counter: done")
                await cast(self.app, "done")
            return lines[1:]
        return lines

    async def terminate(self, reason: Any, lines: list[str]) -> None:
        print(f"counter: terminate({reason!r})")


class App(Supervisor):
    strategy = RestartStrategy.REST_FOR_ONE  # if totals restarts, so does counter

    def child_specs(self) -> list[ChildSpec]:
        return [
            ChildSpec(id="totals", actor_class=Totals, name="totals"),
            ChildSpec(id="counter", actor_class=WordCounter, args=(self.pid, LINES)),
        ]

    async def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "done":
            return Stop("normal")  # the work is over: stop the tree, exit status 0
        return await super().handle_cast(request, state)

    async def terminate(self, reason: Any, state: Any) -> None:
        print(f"app: terminate({reason!r})")  # after every child has stopped


if __name__ == "__main__":
    status = anyotp.run(App, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
    print("exit status", status)
    sys.exit(status)
