"""Supervising a process on another node: :class:`RemoteChild`, a local stand-in.

A supervisor's children are local processes it owns.  To supervise a process on
another node, supervise a ``RemoteChild``: it starts the real process there
(``anyotp.node.spawn``), links to it, and lives and dies with it -- when the remote
process exits, or its node is lost (``"noconnection"``), the stand-in exits with
the same reason and its supervisor applies its restart strategy (a restart spawns
the process again, on the same node); when the supervisor stops the stand-in, it
stops the remote process first.  Like a child started with ``rpc:call(Node,
M, start_link, Args)`` under an OTP supervisor.

:func:`child_spec` turns a child spec into the spec of its stand-in on a node::

    Supervisor.start_child(sup, child_spec("worker1@host", ChildSpec("w", Worker, args=(42,))))

which is ``ChildSpec("w", RemoteChild, args=("worker1@host", Worker, 42))``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._child_spec import ChildSpec
from .._core import ANY, PID, From, exit_process, link
from .._exceptions import ReceiveTimeout, SupervisorError
from .._genserver import GenServer, Stop
from ._api import spawn

__all__ = ["RemoteChild", "child_spec"]


def child_spec(node: str, spec: ChildSpec) -> ChildSpec:
    """The child spec that supervises ``spec``'s process on ``node``; like starting a
    child with a node.

    The result has ``spec``'s id, restart, shutdown and type, and starts a local
    :class:`RemoteChild` that spawns ``spec.actor_class`` (with ``spec.args`` and
    ``spec.kwargs``) on ``node`` and lives and dies with it.  Pass it to
    ``Supervisor.start_child`` or return it from ``child_specs()``.  The class must be
    importable on ``node`` under its module and qualified name.

    Raises:
        SupervisorError: ``spec`` has a ``name`` (it would name the local stand-in:
            register the remote process from its ``init`` instead).
        TypeError: ``node`` is not a str or ``spec`` not a ``ChildSpec``.
    """
    if not isinstance(node, str) or not isinstance(spec, ChildSpec):
        raise TypeError(
            f"child_spec(node, spec) takes a node name and a ChildSpec, got {node!r}, {spec!r}"
        )
    if spec.name is not None:
        raise SupervisorError(
            f"child_spec({node!r}, ChildSpec(id={spec.id!r}, name={spec.name!r})): a child on "
            "another node takes no local name; register it from its init instead "
            "(anyotp.node.register_name)"
        )
    return dataclasses.replace(
        spec,
        actor_class=RemoteChild,
        args=(node, spec.actor_class, *spec.args),
        type=spec.child_type,
    )


class RemoteChild(GenServer):
    """A local stand-in for a process started on another node (see the module doc).

    ``init(node, cls, *args, **kwargs)`` starts ``cls`` on ``node`` (``cls`` is a
    process class or its qualified name ``"package.module:Class"``).  A call
    ``"remote"`` answers the remote process's PID.
    """

    trap_exit = True

    async def init(self, node: str, cls: type[Any] | str, *args: Any, **kwargs: Any) -> PID:
        """Spawn the real child on ``node`` and link to it; the state is its PID."""
        remote = await spawn(node, cls, *args, **kwargs)
        link(remote)
        return remote

    async def handle_call(self, request: Any, from_: From, state: PID) -> Any:
        """Answer ``"remote"`` with the remote child's PID; anything else is an error reply."""
        if request == "remote":
            return (state, state)
        return (("error", f"RemoteChild answers only 'remote', got {request!r}"), state)

    async def handle_info(self, message: Any, state: PID) -> Any:
        """An ``EXIT`` of the remote child, or of the parent: stop with its reason."""
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
