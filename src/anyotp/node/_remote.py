"""Supervising a process on another node: :class:`RemoteChild`, a local stand-in.

A supervisor's children are local processes it owns.  To supervise a process on
another node, supervise a ``RemoteChild``: it starts the real process there
(``anyotp.node.spawn``), links to it, and lives and dies with it -- when the remote
process exits, or its node is lost (``"noconnection"``), the stand-in exits with
the same reason and its supervisor applies its restart strategy (a restart spawns
the process again, on the same node); when the supervisor stops the stand-in, it
stops the remote process first.  Like a child started with ``rpc:call(Node,
M, start_link, Args)`` under an OTP supervisor.

Example::

    ChildSpec("worker", RemoteChild, args=("worker1@host", "app.workers:Worker", 42))
"""

from __future__ import annotations

from typing import Any

from .._core import ANY, PID, From, exit_process, link
from .._exceptions import ReceiveTimeout
from .._genserver import GenServer, Stop
from ._api import spawn

__all__ = ["RemoteChild"]


class RemoteChild(GenServer):
    """A local stand-in for a process started on another node (see the module doc).

    ``init(node, cls, *args, **kwargs)`` starts ``cls`` on ``node`` (``cls`` is a
    process class or its qualified name ``"package.module:Class"``).  A call
    ``"remote"`` answers the remote process's PID.
    """

    trap_exit = True

    async def init(self, node: str, cls: type[Any] | str, *args: Any, **kwargs: Any) -> PID:
        remote = await spawn(node, cls, *args, **kwargs)
        link(remote)
        return remote

    async def handle_call(self, request: Any, from_: From, state: PID) -> Any:
        if request == "remote":
            return (state, state)
        return (("error", f"RemoteChild answers only 'remote', got {request!r}"), state)

    async def handle_info(self, message: Any, state: PID) -> Any:
        match message:
            case ("EXIT", PID() as pid, reason) if pid == state:
                self._otp_remote_gone = True
                return Stop(reason)  # the remote process (or its node) is gone
            case ("EXIT", PID(), reason):
                return Stop(reason)  # from our parent: stop, taking the remote one along
        return state

    async def terminate(self, reason: Any, state: PID) -> None:
        """Stop the remote process (``"shutdown"`` unless the reason says otherwise)
        and wait up to 5 s for its exit."""
        if getattr(self, "_otp_remote_gone", False):
            return
        exit_process(state, reason if isinstance(reason, str) else "shutdown")
        try:
            await self.receive((("EXIT", state, ANY), lambda *_: None), timeout=5.0)
        except ReceiveTimeout:
            exit_process(state, "kill")
