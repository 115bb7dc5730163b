"""The node's keeper: a local process that works for the node.

Global names and group memberships are released when their process exits; the
keeper monitors those processes (an ordinary ``monitor``) and runs the release
callback when the ``DOWN`` comes.  It also starts processes for other nodes
(``anyotp.node.spawn``): a call ``("spawn", "module:Class", args, kwargs)`` imports
the class by its qualified name and starts it among the keeper's children.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .._core import PID, From, Ref, monitor
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

    async def handle_call(
        self, request: Any, from_: From, state: dict[Ref, tuple[PID, ExitCallback]]
    ) -> Any:
        match request:
            case ("spawn", str(qualname), tuple(args), dict(kwargs)):
                try:
                    cls = import_qualified(qualname)
                    pid = await cls.start(*args, task_group=self.children, **kwargs)
                except Exception as e:
                    return (("error", f"{type(e).__name__}: {e}"), state)
                return (("ok", pid), state)
        return (("error", f"unknown request {request!r}"), state)

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


def import_qualified(qualname: str) -> Any:
    """The object named ``"package.module:Qualified.Name"`` (or
    ``"package.module.Name"``), imported.

    Raises:
        ImportError: the module cannot be imported.
        AttributeError: the module has no such name.
    """
    if ":" in qualname:
        module_name, _, attr = qualname.partition(":")
    else:
        module_name, _, attr = qualname.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
