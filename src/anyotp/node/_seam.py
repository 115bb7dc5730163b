"""The node's view of the core's identity API, in one place.

Everything ``anyotp.node`` needs to know about how the core names nodes, PIDs and
Refs goes through these few functions.
"""

from __future__ import annotations

from .._core._ids import NODE, PID, Ref

__all__ = [
    "local_node",
    "pid_from_wire",
    "pid_to_wire",
    "ref_from_wire",
    "ref_to_wire",
    "reset_local_node",
    "set_local_node",
]

_identity: tuple[str, int] = (NODE, 0)


def local_node() -> tuple[str, int]:
    """This node's ``(name, creation)``."""
    return _identity


def set_local_node(name: str, creation: int) -> None:
    """Make this OS process node ``name`` with incarnation ``creation``."""
    global _identity
    _identity = (name, creation)


def reset_local_node() -> None:
    """Back to the unnamed, not distributed node."""
    global _identity
    _identity = (NODE, 0)


def pid_to_wire(pid: PID) -> tuple[str, int, int]:
    """``(node, creation, id)`` of a PID."""
    return (pid.node, _identity[1] if pid.node == NODE else 0, pid.id)


def pid_from_wire(node: str, creation: int, id_: int) -> PID:
    """The PID named by ``(node, creation, id)``: the live local one if it is ours."""
    fn, args = PID.__reduce__(_probe_pid(node, id_))[:2]
    result: PID = fn(*args)
    return result


def _probe_pid(node: str, id_: int) -> PID:
    probe = object.__new__(PID)
    probe.node = node
    probe.id = id_
    return probe


def ref_to_wire(ref: Ref) -> tuple[str, int, int]:
    """``(node, creation, id)`` of a Ref."""
    return (ref.node, 0, ref.id)


def ref_from_wire(node: str, creation: int, id_: int) -> Ref:
    """The Ref named by ``(node, creation, id)``."""
    ref = object.__new__(Ref)
    ref.node = node
    ref.id = id_
    ref._hash = hash((node, id_))
    return ref
