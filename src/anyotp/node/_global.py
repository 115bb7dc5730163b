"""Global names, like Erlang's ``global``: one name, one process, cluster-wide.

Names live in a JetStream KV bucket (``otp_names``).  ``register_name`` is an atomic
*create* of the key, so the first registration wins everywhere; the value (sealed
under the cookie like every envelope) names the process and the incarnation of its
node.  Every node keeps a cache fed by a watch of the bucket, so ``whereis_name``
answers from memory.  A name is released when its process exits (its node deletes
the key) or its node is lost (every surviving node deletes the keys of that
incarnation, with the revision it saw, so a newer registration is never touched).
A name whose node is not up is treated as free.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Final

from .._core import PID, cast_nowait, is_alive
from .._exceptions import NoProcess
from ._codec import BadEnvelope
from ._node import Node, Peer, bucket, subject_token

__all__ = ["GlobalNames"]

log = logging.getLogger("anyotp.node")

NAMES_BUCKET: Final = "otp_names"
_TIMEOUT: Final = 5.0


class _Entry:
    __slots__ = ("creation", "owner", "pid", "revision")

    def __init__(self, pid: PID, owner: str, creation: int, revision: int) -> None:
        self.pid = pid
        self.owner = owner
        self.creation = creation
        self.revision = revision


def _key(name: str) -> str:
    return subject_token(name)


class GlobalNames:
    """The cluster's global names, as seen by one node; a :class:`~anyotp.ViaRegistry`
    (``("global", name)`` is a via-name for it)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._kv: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        self._synced = threading.Event()
        node.on_join(self._on_join)
        node.on_nodedown(self._on_nodedown)

    # -------------------------------------------------------------- I/O loop

    def _on_join(self) -> None:
        self._synced.clear()
        if self._watch_task is not None:
            self._watch_task.cancel()
        self._watch_task = self._node.spawn(self._watch())

    async def _watch(self) -> None:
        node = self._node
        js = node._js
        if js is None:
            self._synced.set()
            return
        try:
            self._kv = await bucket(js, NAMES_BUCKET)
            watcher = await self._kv.watchall()
        except Exception as exc:
            log.warning("node %s: global names unavailable: %r", node.name, exc)
            self._synced.set()
            return
        with self._lock:
            self._cache.clear()
        async for entry in watcher:
            if entry is None:
                self._synced.set()
                continue
            if entry.operation is not None or entry.value is None:  # DEL or PURGE
                with self._lock:
                    for name in list(self._cache):
                        if _key(name) == entry.key:
                            del self._cache[name]
                continue
            try:
                _, name, pid, owner, creation = node.sealer.open(entry.value)
            except (BadEnvelope, ValueError, TypeError) as exc:
                log.warning("node %s: dropped global name entry %s: %s", node.name, entry.key, exc)
                continue
            with self._lock:
                self._cache[name] = _Entry(pid, owner, creation, entry.revision)

    def _on_nodedown(self, peer: Peer, why: str) -> None:
        with self._lock:
            gone = [
                (name, e)
                for name, e in self._cache.items()
                if e.owner == peer.name and e.creation == peer.creation
            ]
            for name, _ in gone:
                del self._cache[name]
        for name, e in gone:
            self._node.spawn(self._delete(name, e.revision))

    async def _delete(self, name: str, revision: int) -> None:
        try:
            await self._kv.delete(_key(name), last=revision)
        except Exception as exc:
            log.debug("global name %r: delete at revision %d: %r", name, revision, exc)

    def _alive_owner(self, e: _Entry) -> bool:
        node = self._node
        if e.owner == node.name:
            return e.creation == node.creation and is_alive(e.pid)
        peer = node.peer(e.owner)
        return peer is not None and peer.creation == e.creation

    async def _register(self, name: str, pid: PID) -> bool:
        import nats.js.errors

        node = self._node
        kv = self._kv
        if kv is None:
            raise RuntimeError(
                f"register_name({name!r}): global names need JetStream on the NATS server "
                "(start nats-server with -js, or a JetStream-enabled cluster)"
            )
        value = node.sealer.seal(("name", name, pid, node.name, node.creation))
        key = _key(name)
        try:
            revision: int = await kv.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            try:
                current = await kv.get(key)
                _, _, held, owner, creation = node.sealer.open(current.value)
            except Exception:
                return False
            if self._alive_owner(_Entry(held, owner, creation, current.revision)):
                return False
            try:
                revision = await kv.update(key, value, last=current.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                return False
        with self._lock:
            self._cache[name] = _Entry(pid, node.name, node.creation, revision)
        return True

    async def _unregister(self, name: str, pid: PID | None) -> None:
        with self._lock:
            e = self._cache.get(name)
            if e is None or (pid is not None and e.pid != pid):
                return
            del self._cache[name]
        await self._delete(name, e.revision)

    # ---------------------------------------------------------------- API

    def wait_synced(self, timeout: float | None) -> bool:
        """Block until the cache holds the bucket's content; False on timeout."""
        return self._synced.wait(timeout)

    def register_name(self, key: Any, pid: PID) -> bool:
        """Register ``pid`` (a live local process) under the global name ``key``;
        like ``global:register_name/2``.  Blocks for one round trip to the server.

        Returns:
            True if registered; False if the name is held by a live process.

        Raises:
            TypeError: ``key`` is not a str or ``pid`` not a PID.
            NoProcess: ``pid`` is not a live local process.
            RuntimeError: the server has no JetStream.
            TimeoutError: no answer from the server within 5 s.
        """
        if not isinstance(key, str) or not key:
            raise TypeError(f"global names are non-empty str, got {type(key).__name__} {key!r}")
        if type(pid) is not PID:
            raise TypeError(f"register_name({key!r}, ...) takes a PID, got {pid!r}")
        if not (pid.is_local and is_alive(pid)):
            raise NoProcess(
                f"register_name({key!r}, {pid!r}): only a live local process can be "
                "registered (register it from its own node)",
                pid,
            )
        self._check_not_on_io_thread(f"register_name({key!r}, {pid!r})")
        ok: bool = self._node.run_io(self._register(key, pid)).result(_TIMEOUT)
        if ok:
            keeper = self._node.keeper
            if keeper is not None:
                cast_nowait(keeper, ("watch", pid, lambda p, _: self._release(key, p)))
        return ok

    def _check_not_on_io_thread(self, what: str) -> None:
        if self._node.on_io_thread():
            raise RuntimeError(
                f"{what} waits for the NATS server, which this node's client serves on "
                "this very event loop: call it from a thread "
                "(await anyio.to_thread.run_sync(anyotp.node.register_name, name, pid)), "
                "or start the node with io_thread=True"
            )

    def _release(self, name: str, pid: PID) -> None:
        try:
            self._node.run_io(self._unregister(name, pid))
        except RuntimeError:
            pass  # the node left

    def unregister_name(self, key: Any) -> None:
        """Remove the global name ``key``; like ``global:unregister_name/1``.  Blocks
        for one round trip to the server; unknown names are ignored."""
        self._check_not_on_io_thread(f"unregister_name({key!r})")
        self._node.run_io(self._unregister(key, None)).result(_TIMEOUT)

    def whereis_name(self, key: Any) -> PID | None:
        """The PID registered under the global name ``key``, or None; like
        ``global:whereis_name/1``.  Answers from the local cache, without blocking."""
        e = self._cache.get(key)
        if e is None or not self._alive_owner(e):
            return None
        return e.pid

    def registered_names(self) -> list[str]:
        """Every global name held by a live process, sorted; like
        ``global:registered_names/0``."""
        with self._lock:
            entries = list(self._cache.items())
        return sorted(name for name, e in entries if self._alive_owner(e))
