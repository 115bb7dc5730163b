"""The node's keeper: a local process that watches local processes for the node.

Global names and group memberships are released when their process exits; the
keeper monitors those processes (an ordinary ``monitor``) and runs the release
callback when the ``DOWN`` comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core._ids import PID, Ref
from .._core._process import monitor
from .._genserver import GenServer

__all__ = ["Keeper"]

#: ``callback(pid, reason)``, run in the keeper process.
ExitCallback = Callable[[PID, Any], None]


class Keeper(GenServer):
    """Runs ``callback(pid, reason)`` when a watched local process exits.

    Cast ``("watch", pid, callback)`` to it.
    """

    async def init(self) -> dict[Ref, tuple[PID, ExitCallback]]:
        return {}

    async def handle_cast(
        self, request: Any, state: dict[Ref, tuple[PID, ExitCallback]]
    ) -> dict[Ref, tuple[PID, ExitCallback]]:
        match request:
            case ("watch", PID() as pid, callback):
                state[monitor(pid)] = (pid, callback)
        return state

    async def handle_info(
        self, message: Any, state: dict[Ref, tuple[PID, ExitCallback]]
    ) -> dict[Ref, tuple[PID, ExitCallback]]:
        match message:
            case ("DOWN", Ref() as ref, "process", _, reason):
                entry = state.pop(ref, None)
                if entry is not None:
                    pid, callback = entry
                    callback(pid, reason)
        return state
