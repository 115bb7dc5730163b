"""The node's view of the core's identity API, in one place."""

from __future__ import annotations

from .._core import (
    PID,
    Ref,
    local_node,
    pid_from_wire,
    ref_from_wire,
    reset_local_node,
    set_local_node,
)

__all__ = [
    "local_node",
    "pid_from_wire",
    "pid_to_wire",
    "ref_from_wire",
    "ref_to_wire",
    "reset_local_node",
    "set_local_node",
]


def pid_to_wire(pid: PID) -> tuple[str, int, int]:
    """``(node, creation, id)`` of a PID."""
    return (pid.node, pid.creation, pid.id)


def ref_to_wire(ref: Ref) -> tuple[str, int, int]:
    """``(node, creation, id)`` of a Ref."""
    wire: tuple[str, int, int] = ref.__reduce__()[1]
    return wire
