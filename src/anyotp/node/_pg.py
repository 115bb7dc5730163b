"""Process groups, like Erlang's ``pg``: named groups of processes across nodes.

Each node is the authority for its own processes: ``join`` and ``leave`` change the
local membership and tell every node (one broadcast envelope); a node that comes up
gets the whole local membership of each node it meets.  A member is dropped when it
exits (the keeper sees its ``DOWN``) and every member of a node is dropped when the
node is lost.  Membership is eventually consistent, as in ``pg``: a ``members`` call
right after a remote ``join`` may not list it yet.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._core import PID, cast_nowait, is_alive
from .._exceptions import NoProcess

if TYPE_CHECKING:
    from ._node import Node, Peer

__all__ = ["Groups"]


class Groups:
    """Every group as seen by one node."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._local: dict[Any, list[PID]] = {}
        self._remote: dict[str, dict[Any, list[PID]]] = {}
        self._watched: set[PID] = set()
        node.on("pg_join", self._on_join)
        node.on("pg_leave", self._on_leave)
        node.on("pg_sync", self._on_sync)
        node.on_nodeup(self._on_nodeup)
        node.on_nodedown(self._on_nodedown)

    # -------------------------------------------------------------- I/O loop

    def _on_nodeup(self, peer: Peer) -> None:
        with self._lock:
            snapshot = {group: list(pids) for group, pids in self._local.items() if pids}
        self._node.post_to(peer, "pg_sync", snapshot, what="group membership")

    def _on_nodedown(self, peer: Peer, why: str) -> None:
        with self._lock:
            self._remote.pop(peer.name, None)

    def _on_join(self, peer: Peer, group: Any, pids: list[PID]) -> None:
        with self._lock:
            self._remote.setdefault(peer.name, {}).setdefault(group, []).extend(pids)

    def _on_leave(self, peer: Peer, group: Any, pids: list[PID]) -> None:
        with self._lock:
            members = self._remote.get(peer.name, {}).get(group)
            if members is None:
                return
            for pid in pids:
                if pid in members:
                    members.remove(pid)

    def _on_sync(self, peer: Peer, groups: dict[Any, list[PID]]) -> None:
        with self._lock:
            self._remote[peer.name] = {group: list(pids) for group, pids in groups.items()}

    # ---------------------------------------------------------------- API

    def join(self, group: Any, pid: PID) -> None:
        """Add the local process ``pid`` to ``group`` (once more if already in it); like
        ``pg:join/2``.

        Raises:
            NoProcess: ``pid`` is not a live local process.
        """
        if type(pid) is not PID or not (pid.is_local and is_alive(pid)):
            raise NoProcess(
                f"join({group!r}, {pid!r}): only a live local process can join a group "
                "(join it from its own node)",
                pid,
            )
        with self._lock:
            self._local.setdefault(group, []).append(pid)
            watch = pid not in self._watched
            self._watched.add(pid)
        if watch and self._node.keeper is not None:
            cast_nowait(self._node.keeper, ("watch", pid, self._exited))
        self._node.broadcast("pg_join", group, [pid])

    def leave(self, group: Any, pid: PID) -> bool:
        """Remove the local process ``pid`` from ``group`` once; like ``pg:leave/2``.

        Returns:
            False if it was not a member.
        """
        with self._lock:
            members = self._local.get(group)
            if members is None or pid not in members:
                return False
            members.remove(pid)
            if not members:
                del self._local[group]
        self._node.broadcast("pg_leave", group, [pid])
        return True

    def _exited(self, pid: PID, reason: Any) -> None:
        with self._lock:
            self._watched.discard(pid)
            left = []
            for group, members in list(self._local.items()):
                n = members.count(pid)
                if n:
                    left.append((group, [pid] * n))
                    members[:] = [p for p in members if p != pid]
                    if not members:
                        del self._local[group]
        for group, pids in left:
            try:
                self._node.broadcast("pg_leave", group, pids)
            except RuntimeError:
                pass  # the node left

    def members(self, group: Any) -> list[PID]:
        """Every member of ``group`` on every node that is up; like
        ``pg:get_members/1``.  Local members first."""
        with self._lock:
            result = list(self._local.get(group, ()))
            for groups in self._remote.values():
                result.extend(groups.get(group, ()))
        return result

    def local_members(self, group: Any) -> list[PID]:
        """The members of ``group`` on this node; like ``pg:get_local_members/1``."""
        with self._lock:
            return list(self._local.get(group, ()))

    def which_groups(self) -> list[Any]:
        """Every group with a member, local or remote; like ``pg:which_groups/0``."""
        with self._lock:
            groups = {g for g, pids in self._local.items() if pids}
            for remote in self._remote.values():
                groups.update(g for g, pids in remote.items() if pids)
        return list(groups)
