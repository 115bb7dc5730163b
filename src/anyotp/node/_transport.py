"""The NATS transport: the core's signals to processes of other nodes, and back.

The core calls a :class:`NatsTransport` for every signal whose target is a PID of
another node; the transport seals it into one envelope and queues it for the target
node's inbox on the node's one connection (so the order of calls between two
processes is the order of arrival, for every kind of signal).  On receipt it calls
the core's ``deliver_*`` / ``accept_*`` functions.

Like Erlang's distribution entry, the transport keeps the books of every link and
monitor that crosses nodes, in both directions, so that when a node is lost it can
tell the local side: an exit ``"noconnection"`` for each link, a ``DOWN``
``"noconnection"`` for each monitor a local watcher held (which fails pending calls
with ``CallExit(reason="noconnection")``), and it drops the monitors the lost node's
processes held on local ones.

Envelope kinds (after ``kind, sender node, its creation, receiver creation``):

=========== ======================================
``msg``     ``to, message``
``exit``    ``sender, to, reason, linked``
``link``    ``remote (the sender's process), local``
``unlink``  ``remote, local``
``mon``     ``watcher, ref, target``
``call``    ``watcher, ref, target, message`` (``mon``, then ``msg``)
``demon``   ``ref, target``
``down``    ``ref, pid, reason``
``reply``   ``ref, value``
=========== ======================================

A call is two envelopes, as a raw request/reply is two messages: ``call`` carries
the monitor and the request, and the reply ends the monitor on both sides (as
OTP 24's alias-based calls do): the server's node drops the monitor ``ref`` held on
its process when it sends the reply to ``ref``, and the caller's node, receiving
the reply from that node, sends no ``demon`` when the caller demonitors.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .._core import (
    PID,
    Ref,
    accept_demonitor,
    accept_link,
    accept_monitor,
    accept_unlink,
    deliver_down,
    deliver_exit,
    deliver_reply,
    send_nowait,
)
from ._node import Node, Peer

__all__ = ["NatsTransport"]

log = logging.getLogger("anyotp.node")


class _Books:
    """The cross-node links and monitors held with one peer node."""

    __slots__ = ("links", "monitors_in", "monitors_out")

    def __init__(self) -> None:
        #: (local, remote) pairs linked
        self.links: set[tuple[PID, PID]] = set()
        #: monitors local watchers hold on the peer's processes: ref -> remote target
        self.monitors_out: dict[Ref, PID] = {}
        #: monitors the peer's processes hold on local ones: ref -> local target
        self.monitors_in: dict[Ref, PID] = {}


class NatsTransport:
    """The core's :class:`~anyotp._core.Transport` over a :class:`Node`."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._books: dict[str, _Books] = {}
        node.on("msg", self._on_msg)
        node.on("exit", self._on_exit)
        node.on("link", self._on_link)
        node.on("unlink", self._on_unlink)
        node.on("mon", self._on_monitor)
        node.on("call", self._on_call)
        node.on("demon", self._on_demonitor)
        node.on("down", self._on_down)
        node.on("reply", self._on_reply)
        node.on_nodedown(self._on_nodedown)

    def _books_for(self, name: str) -> _Books:
        books = self._books.get(name)
        if books is None:
            books = self._books[name] = _Books()
        return books

    def _later(self, fn: Any, *args: Any) -> None:
        # Deliver on the I/O loop, not inside the caller's core call.
        self._node.call_soon(fn, *args)

    # ------------------------------------------------------- the core's calls

    def send(self, to: PID, message: Any) -> None:
        """A message to a remote PID; dropped if its node is not up (at most once).

        Raises:
            MessageTooLarge: the message is over the server's ``max_payload``.
            TypeError: the codec cannot carry it (msgpack: not data).
        """
        peer = self._node.peer_of(to)
        if peer is not None:
            self._node.post_to(peer, "msg", to, message)

    def exit(self, sender: PID | None, to: PID, reason: Any, linked: bool) -> None:
        """An exit signal to a remote process."""
        peer = self._node.peer_of(to)
        if peer is None:
            return
        if linked and sender is not None:
            with self._lock:
                self._books_for(peer.name).links.discard((sender, to))
        self._node.post_to(peer, "exit", sender, to, reason, linked, what="exit reason")

    def link(self, local: PID, remote: PID) -> None:
        """``local`` linked itself to ``remote``: an exit ``noconnection`` (node not up)
        or ``noproc`` (a previous incarnation) comes back at once if it cannot be."""
        with self._lock:  # against a nodedown between the check and the record
            peer = self._node.peer_of(remote)
            if peer is not None:
                self._books_for(peer.name).links.add((local, remote))
        if peer is None:
            reason = "noconnection" if self._node.peer(remote.node) is None else "noproc"
            self._later(deliver_exit, local, remote, reason, True)
            return
        self._node.post_to(peer, "link", local, remote)

    def unlink(self, local: PID, remote: PID) -> None:
        """``local`` removed its link to ``remote``."""
        peer = self._node.peer_of(remote)
        if peer is None:
            return
        with self._lock:
            self._books_for(peer.name).links.discard((local, remote))
        self._node.post_to(peer, "unlink", local, remote)

    def monitor(self, watcher: PID | None, ref: Ref, target: PID) -> None:
        """A local watcher monitors a remote process: ``DOWN`` ``noconnection`` at
        once if its node is not up, ``noproc`` if the PID is of a previous
        incarnation."""
        with self._lock:  # against a nodedown between the check and the record
            peer = self._node.peer_of(target)
            if peer is not None:
                self._books_for(peer.name).monitors_out[ref] = target
        if peer is None:
            reason = "noconnection" if self._node.peer(target.node) is None else "noproc"
            self._later(deliver_down, ref, target, reason)
            return
        self._node.post_to(peer, "mon", watcher, ref, target)

    def call(self, watcher: PID | None, ref: Ref, target: PID, message: Any) -> None:
        """:meth:`monitor`, then :meth:`send`, in one envelope.

        Raises:
            MessageTooLarge: the request is over the server's ``max_payload``.
        """
        with self._lock:
            peer = self._node.peer_of(target)
            if peer is not None:
                self._books_for(peer.name).monitors_out[ref] = target
        if peer is None:
            reason = "noconnection" if self._node.peer(target.node) is None else "noproc"
            self._later(deliver_down, ref, target, reason)
            return
        try:
            self._node.post_to(peer, "call", watcher, ref, target, message)
        except BaseException:
            with self._lock:
                self._books_for(peer.name).monitors_out.pop(ref, None)
            raise

    def demonitor(self, ref: Ref, target: PID) -> None:
        """The monitor ``ref`` of a remote process was removed.  Nothing is sent when
        the peer has dropped it already: its ``DOWN`` came, or its reply to ``ref``."""
        peer = self._node.peer_of(target)
        if peer is None:
            return
        with self._lock:
            held = self._books_for(peer.name).monitors_out.pop(ref, None)
        if held is not None:
            self._node.post_to(peer, "demon", ref, target)

    def down(self, ref: Ref, pid: PID, reason: Any) -> None:
        """A local process monitored from the node of ``ref`` died."""
        peer = self._node.peer(ref.node)
        if peer is None:
            return
        with self._lock:
            self._books_for(peer.name).monitors_in.pop(ref, None)
        self._node.post_to(peer, "down", ref, pid, reason, what="exit reason")

    def reply(self, ref: Ref, value: Any) -> None:
        """The reply to a call whose caller is on the node of ``ref``.

        Raises:
            MessageTooLarge: the reply is over the server's ``max_payload``.
        """
        peer = self._node.peer(ref.node)
        if peer is None:
            return
        self._node.post_to(peer, "reply", ref, value, what="reply")
        # the call is over: the caller's monitor of the server ends with the reply
        with self._lock:
            local = self._books_for(peer.name).monitors_in.pop(ref, None)
        if local is not None:
            accept_demonitor(local, ref)

    def is_alive(self, pid: PID) -> bool:
        """Whether the node of ``pid`` is up, in the incarnation that made it."""
        return self._node.peer_of(pid) is not None

    # ----------------------------------------------------------- on receipt

    def _on_msg(self, peer: Peer, to: PID, message: Any) -> None:
        send_nowait(to, message)

    def _on_exit(self, peer: Peer, sender: PID | None, to: PID, reason: Any, linked: bool) -> None:
        if linked and sender is not None:
            with self._lock:
                self._books_for(peer.name).links.discard((to, sender))
        deliver_exit(to, sender, reason, linked)

    def _on_link(self, peer: Peer, remote: PID, local: PID) -> None:
        if accept_link(local, remote):
            with self._lock:
                self._books_for(peer.name).links.add((local, remote))
        else:
            self._node.post_to(peer, "exit", local, remote, "noproc", True)

    def _on_unlink(self, peer: Peer, remote: PID, local: PID) -> None:
        with self._lock:
            self._books_for(peer.name).links.discard((local, remote))
        accept_unlink(local, remote)

    def _on_monitor(self, peer: Peer, watcher: PID | None, ref: Ref, target: PID) -> None:
        with self._lock:
            self._books_for(peer.name).monitors_in[ref] = target
        accept_monitor(target, ref, watcher)

    def _on_call(
        self, peer: Peer, watcher: PID | None, ref: Ref, target: PID, message: Any
    ) -> None:
        self._on_monitor(peer, watcher, ref, target)
        send_nowait(target, message)

    def _on_demonitor(self, peer: Peer, ref: Ref, target: PID) -> None:
        with self._lock:
            self._books_for(peer.name).monitors_in.pop(ref, None)
        accept_demonitor(target, ref)

    def _on_down(self, peer: Peer, ref: Ref, pid: PID, reason: Any) -> None:
        with self._lock:
            self._books_for(peer.name).monitors_out.pop(ref, None)
        deliver_down(ref, pid, reason)

    def _on_reply(self, peer: Peer, ref: Ref, value: Any) -> None:
        # the replying node dropped the caller's monitor of its process, if it held it
        with self._lock:
            self._books_for(peer.name).monitors_out.pop(ref, None)
        deliver_reply(ref, value)

    def _on_nodedown(self, peer: Peer, why: str) -> None:
        with self._lock:
            books = self._books.pop(peer.name, None)
        if books is None:
            return
        for local, remote in books.links:
            deliver_exit(local, remote, "noconnection", True)
        for ref, remote in books.monitors_out.items():
            deliver_down(ref, remote, "noconnection")
        for ref, local in books.monitors_in.items():
            accept_demonitor(local, ref)
