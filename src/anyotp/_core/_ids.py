"""Process identifiers, references and node identity.

A :class:`PID` names a process; a :class:`Ref` is a unique token (``make_ref()``,
``monitor()``).  Both carry the identity of the node that made them: its *name* and its
*creation* (a number chosen when the node starts, as in Erlang), so that a PID of
another node, or of a previous run of this node, is never mistaken for a local one.

This node starts as ``anyotp@<host>.<os pid>.<random>`` with a random creation;
``anyotp.node.start(...)`` renames it (:func:`set_local_node`).  Local PIDs made before
the rename report the new name: they point at the one local :class:`NodeId` object.

PIDs have no public constructor: the runtime makes them.  ``Ref()`` works (as in the
seeds' library) and is the same as ``make_ref()``.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._process import Proc

__all__ = [
    "LOCAL",
    "PID",
    "NodeId",
    "Ref",
    "local_node",
    "make_ref",
    "node_id",
    "reset_local_node",
    "set_local_node",
    "table",
]

_pid_ids = itertools.count(1)
_ref_ids = itertools.count(1)


class NodeId:
    """The identity of a node: its name and creation.  One object per identity.

    PIDs and Refs point at it; the local node's object is :data:`LOCAL`, whose name
    and creation change when the node joins a cluster.
    """

    __slots__ = ("creation", "name")

    def __init__(self, name: str, creation: int) -> None:
        self.name = name
        self.creation = creation

    def __repr__(self) -> str:
        return f"<NodeId {self.name} #{self.creation}>"


def _default_name() -> str:
    return f"anyotp@{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


#: This node.
LOCAL: Final = NodeId(_default_name(), random.getrandbits(32))
_nodes: dict[tuple[str, int], NodeId] = {(LOCAL.name, LOCAL.creation): LOCAL}
_nodes_lock = threading.Lock()


def node_id(name: str, creation: int) -> NodeId:
    """The one :class:`NodeId` for ``(name, creation)`` (:data:`LOCAL` for this node)."""
    key = (name, creation)
    node = _nodes.get(key)
    if node is None:
        with _nodes_lock:
            node = _nodes.setdefault(key, NodeId(name, creation))
    return node


def local_node() -> tuple[str, int]:
    """This node's ``(name, creation)``."""
    return LOCAL.name, LOCAL.creation


def set_local_node(name: str, creation: int) -> None:
    """Rename this node (``anyotp.node.start``): local PIDs report the new identity.

    Raises:
        ValueError: ``name`` is empty or ``(name, creation)`` already names a node
            this node has heard of.
    """
    if not name:
        raise ValueError("a node name must be a non-empty str")
    with _nodes_lock:
        key = (name, creation)
        if key in _nodes and _nodes[key] is not LOCAL:
            raise ValueError(f"node {name!r} with creation {creation} is already known")
        _nodes.pop((LOCAL.name, LOCAL.creation), None)
        LOCAL.name = name
        LOCAL.creation = creation
        _nodes[key] = LOCAL


def reset_local_node() -> None:
    """Give this node a fresh default identity (after leaving a cluster)."""
    set_local_node(_default_name(), random.getrandbits(32))


#: live local processes by PID number (filled by ``_process``; here so that
#: :func:`pid_from_wire` finds a live process without importing the layer above)
table: dict[int, Proc] = {}


class PID:
    """Process identifier: an opaque, hashable handle to a process.

    Two PIDs are equal when they name the same process of the same node incarnation.
    A PID stays valid after its process exits: a message sent to it is dropped (as
    Erlang's ``Pid ! Msg`` is), monitoring it delivers a ``"noproc"`` DOWN at once.
    Like an Erlang pid.

    Attributes:
        id: the process number, unique within its node.
    """

    __slots__ = ("__weakref__", "_hash", "_node", "_proc", "id")

    id: int
    _node: NodeId
    _hash: int
    # The live process this PID names, or None once it has exited (or for a PID of
    # another node).  Sending follows this pointer: no table lookup on the hot path.
    _proc: Proc | None

    def __init__(self, *_: Any, **__: Any) -> None:
        raise TypeError("PID has no public constructor: processes get one when they start")

    @classmethod
    def _new(cls, proc: Proc | None, node: NodeId = LOCAL, id_: int | None = None) -> PID:
        self = object.__new__(cls)
        self._node = node
        self.id = next(_pid_ids) if id_ is None else id_
        self._proc = proc
        # id(node) is stable: NodeId objects are interned and never freed
        self._hash = hash((id(node), self.id))
        return self

    @property
    def node(self) -> str:
        """The name of the node (OS process) that owns the process."""
        return self._node.name

    @property
    def creation(self) -> int:
        """The creation (incarnation number) of that node."""
        return self._node.creation

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PID:
            return NotImplemented
        return self.id == other.id and self._node is other._node

    def __repr__(self) -> str:
        node = self._node
        return f"<PID 0.{self.id}>" if node is LOCAL else f"<PID {node.name}.{self.id}>"

    def __reduce__(self) -> tuple[Any, ...]:
        node = self._node
        return (pid_from_wire, (node.name, node.creation, self.id))

    @property
    def is_local(self) -> bool:
        """True when the process belongs to this node (this incarnation)."""
        return self._node is LOCAL


def pid_from_wire(node: str, creation: int, id_: int) -> PID:
    """The PID ``(node, creation, id)`` names: the live local process's own PID, a
    dead local PID (an old incarnation, or a process that exited), or a remote PID."""
    nid = node_id(node, creation)
    if nid is LOCAL:
        proc = table.get(id_)
        if proc is not None:
            return proc.pid
    return PID._new(None, nid, id_)


class Ref:
    """A unique reference, like Erlang's ``make_ref()``: equal only to itself.

    Returned by :func:`~anyotp.monitor` and :func:`make_ref`; use it to tag requests
    and match their replies.  It can cross nodes and come back equal.
    """

    __slots__ = ("_hash", "_node", "id")

    _node: NodeId
    id: int
    _hash: int

    def __init__(self) -> None:
        self._node = LOCAL
        self.id = i = next(_ref_ids)
        self._hash = hash((id(LOCAL), i))

    @property
    def node(self) -> str:
        """The name of the node that made it."""
        return self._node.name

    @property
    def is_local(self) -> bool:
        """True when this node made it (this incarnation)."""
        return self._node is LOCAL

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not Ref:
            return NotImplemented
        return self.id == other.id and self._node is other._node

    def __repr__(self) -> str:
        node = self._node
        return f"<Ref 0.{self.id}>" if node is LOCAL else f"<Ref {node.name}.{self.id}>"

    def __reduce__(self) -> tuple[Any, ...]:
        node = self._node
        return (ref_from_wire, (node.name, node.creation, self.id))


def ref_from_wire(node: str, creation: int, id_: int) -> Ref:
    """The Ref ``(node, creation, id)`` names (equal to the original)."""
    self = object.__new__(Ref)
    nid = node_id(node, creation)
    self._node = nid
    self.id = id_
    self._hash = hash((id(nid), id_))
    return self


def make_ref() -> Ref:
    """Return a new unique :class:`Ref`, like Erlang's ``make_ref/0``."""
    return Ref()
