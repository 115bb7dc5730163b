"""Process identifiers and references.

A :class:`PID` names a process; it carries the identity of the node (the OS process)
that owns it, so that a later transport can route a ``send`` to another node without
changing the API.  A :class:`Ref` is a unique token (``make_ref()``, ``monitor()``).
PIDs have no public constructor: the runtime makes them.  ``Ref()`` works (as in the
seeds' library) and is the same as ``make_ref()``.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._process import Process

__all__ = ["NODE", "PID", "Ref", "make_ref"]

#: This node's name, unique per OS process: ``anyotp@<host>.<os pid>.<random>``.
NODE: Final[str] = f"anyotp@{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

_pid_ids = itertools.count(1)
_ref_ids = itertools.count(1)


class PID:
    """Process identifier: an opaque, hashable handle to a process.

    Two PIDs are equal when they name the same process of the same node.  A PID stays
    valid after its process exits: sending to it raises :class:`~anyotp.NoProcess`,
    monitoring it delivers a ``"noproc"`` DOWN at once.  Like an Erlang pid.

    Attributes:
        node: name of the node (OS process) that owns the process.
        id: the process number, unique within its node.
    """

    __slots__ = ("__weakref__", "_hash", "_proc", "id", "node")

    node: str
    id: int
    _hash: int
    # The live process this PID names, or None once it has exited (or for a PID of
    # another node).  Sending follows this pointer: no table lookup on the hot path.
    _proc: Process | None

    def __init__(self, *_: Any, **__: Any) -> None:
        raise TypeError("PID has no public constructor: processes get one when they start")

    @classmethod
    def _new(cls, proc: Process | None, node: str = NODE, id_: int | None = None) -> PID:
        self = object.__new__(cls)
        self.node = node
        self.id = next(_pid_ids) if id_ is None else id_
        self._proc = proc
        self._hash = hash((node, self.id))
        return self

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PID:
            return NotImplemented
        return self.id == other.id and self.node == other.node

    def __repr__(self) -> str:
        return f"<PID 0.{self.id}>" if self.node == NODE else f"<PID {self.node}.{self.id}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_pid_from_wire, (self.node, self.id))

    @property
    def is_local(self) -> bool:
        """True when the process belongs to this node."""
        return self.node == NODE


def _pid_from_wire(node: str, id_: int) -> PID:
    # A PID coming back from pickling: re-attach it to the live local process if any.
    if node == NODE:
        from ._process import _table

        proc = _table.get(id_)
        if proc is not None:
            return proc.pid
    return PID._new(None, node, id_)


class Ref:
    """A unique reference, like Erlang's ``make_ref()``: equal only to itself.

    Returned by :func:`~anyotp.monitor` and :func:`make_ref`; use it to tag requests
    and match their replies.
    """

    __slots__ = ("_hash", "id", "node")

    node: str
    id: int
    _hash: int

    def __init__(self) -> None:
        self.node = NODE
        self.id = next(_ref_ids)
        self._hash = hash((NODE, self.id))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not Ref:
            return NotImplemented
        return self.id == other.id and self.node == other.node

    def __repr__(self) -> str:
        return f"<Ref 0.{self.id}>" if self.node == NODE else f"<Ref {self.node}.{self.id}>"


def make_ref() -> Ref:
    """Return a new unique :class:`Ref`, like Erlang's ``make_ref/0``."""
    return Ref()
