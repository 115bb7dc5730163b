"""The node: one NATS connection, membership, heartbeats, node monitors.

Threading
    nats-py is asyncio-only.  On asyncio the node runs its NATS client on the
    application's loop; under trio (or with ``io_thread=True``) on a dedicated
    asyncio thread (``anyotp-node-io``).  "The I/O loop" below is whichever of the
    two runs the client.  The node's entry points (``post``, ``nodes``,
    ``monitor_node``) are plain functions that work from any thread.  Outgoing
    envelopes go through one FIFO drained by one task on the I/O loop (the first of a
    burst posted on the I/O loop itself, with nothing queued, goes to the client at
    once), so the order of calls is the order on the wire: with core NATS ordered
    per connection, every signal between two processes arrives in the order it was
    sent.  Envelopes queued
    together for one node travel as one NATS message (a batch frame).

Membership, in three layers
    1. the server's DISCONNECT advisories (``otp.sys.disconnect``): a peer whose
       connection drops is down within milliseconds;
    2. heartbeats on ``otp.hb`` every ``heartbeat_timeout / 4`` seconds: a peer
       silent for ``heartbeat_timeout`` is down (a hung node, a lost machine, a
       partition: no advisory comes for those);
    3. a JetStream KV bucket of leases (``otp_nodes``), so a late joiner knows the
       cluster at once.

Incarnations
    A node has a random 64-bit *creation*.  Every envelope names the sender's and
    the receiver's; a receiver drops what is addressed to another incarnation of
    itself, and what comes from an incarnation it has seen go down (and tells that
    node it was disowned, so it rejoins as a new incarnation).  A node that loses its
    own NATS connection treats every other node as down, drops what it had not sent,
    and reconnects as a new incarnation: nothing sent before the loss arrives after a
    peer saw the nodedown.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import anyio

from .._core import PID, send_nowait
from ._codec import BadEnvelope, Codec, Sealer
from ._seam import pid_to_wire, reset_local_node, set_local_node
from ._server import DISCONNECT_SUBJECT, NatsServer

__all__ = ["DEFAULT_HEARTBEAT_TIMEOUT", "Node", "subject_token"]

log = logging.getLogger("anyotp.node")

#: Seconds a peer may stay silent before it is declared down (Erlang's net_ticktime).
DEFAULT_HEARTBEAT_TIMEOUT: Final = 12.0

PREFIX: Final = "otp"
HB_SUBJECT: Final = f"{PREFIX}.hb"
LEASES_BUCKET: Final = "otp_nodes"

#: First byte of a batch frame (an envelope starts with its version, 1).
BATCH: Final = b"\x00"
_LEN = functools.partial(int.to_bytes, length=4, byteorder="big")
_SAFE = re.compile(r"^[A-Za-z0-9_@-]+$")
_DEAD_KEPT: Final = 4096


def subject_token(name: str) -> str:
    """A NATS subject token for a node or key name: the name itself when it is made
    of letters, digits, ``_``, ``@`` and ``-``, else ``b64-`` and its URL-safe base64."""
    if _SAFE.match(name):
        return name
    return "b64-" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def new_creation() -> int:
    """A fresh random incarnation number (non-zero, 63 bits)."""
    return int.from_bytes(os.urandom(8), "big") >> 1 | 1


class Peer:
    """What a node knows of another node it sees up."""

    __slots__ = ("cid", "creation", "keeper", "last_seen", "name", "subject")

    name: str
    creation: int
    cid: int | None
    keeper: PID | None
    last_seen: float
    subject: str

    def __init__(self, name: str, creation: int, cid: int | None) -> None:
        self.name = name
        self.creation = creation
        self.cid = cid
        #: the node's keeper process (it spawns processes for other nodes)
        self.keeper = None
        self.subject = f"{PREFIX}.node.{subject_token(name)}"
        self.last_seen = time.monotonic()

    def __repr__(self) -> str:
        return f"<Peer {self.name} creation={self.creation:x}>"


#: A handler of one envelope kind: ``handler(peer, *fields)`` on the I/O loop.
Handler = Callable[..., None]


class Node:
    """This OS process as a member of a cluster: see :func:`anyotp.node.start`.

    Attributes:
        name: ``name@host``.
        creation: this incarnation's number (changes when the node rejoins).
        url: the (first) NATS server URL it connects to.
        urls: every NATS server URL it may connect to.
        cookie: the cluster secret every node shares.
        heartbeat_timeout: seconds of silence after which a peer is down.
        max_payload: the largest envelope in bytes the server accepts.
        incarnations: how many times this node joined (1, then +1 per rejoin).
    """

    name: str
    urls: list[str]
    url: str
    cookie: str | bytes
    heartbeat_timeout: float
    sealer: Sealer
    creation: int
    subject: str
    max_payload: int
    incarnations: int
    keeper: PID | None
    server: NatsServer | None

    def __init__(
        self,
        name: str,
        url: str | list[str],
        cookie: str | bytes,
        *,
        codec: str | Codec = "pickle",
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.urls = [url] if isinstance(url, str) else list(url)
        self.url = self.urls[0]
        self.cookie = cookie
        self.heartbeat_timeout = heartbeat_timeout
        self.sealer = Sealer(cookie, codec)
        self.creation = new_creation()
        self.subject = f"{PREFIX}.node.{subject_token(name)}"
        self._connect_options = dict(connect_options or {})
        self._peers: dict[str, Peer] = {}
        self._dead: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._node_watchers: dict[str, list[PID]] = {}
        self._all_watchers: list[PID] = []
        self._handlers: dict[str, Handler] = {}
        self._nodeup_hooks: list[Callable[[Peer], None]] = []
        self._nodedown_hooks: list[Callable[[Peer, str], None]] = []
        self._reincarnation_hooks: list[Callable[[], None]] = []
        self._outq: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake_pending = False
        self._burst = False
        self._loop_ident = 0
        self._refused = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._js: Any = None
        self._leases: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._up = threading.Event()
        #: the keeper process (set by start()), which watches local processes
        self.keeper = None
        #: the embedded server this node started, if any
        self.server = None
        self.max_payload = 1024 * 1024
        self.incarnations = 0
        self.on("hb", self._on_hb)
        self.on("hello", self._on_hello)
        self.on("bye", self._on_bye)

    def __repr__(self) -> str:
        return f"<Node {self.name} creation={self.creation:x} peers={sorted(self._peers)}>"

    # ------------------------------------------------------------- I/O thread

    async def join(self, io_thread: bool, timeout: float) -> None:
        """Connect and join the cluster.

        Args:
            io_thread: run the NATS client on a dedicated asyncio thread (required
                under trio); False runs it on the calling asyncio loop.
            timeout: seconds to wait for the connection.

        Raises:
            TimeoutError: not connected within ``timeout``.
        """
        set_local_node(self.name, self.creation)
        if not io_thread:
            self._loop = asyncio.get_running_loop()
            self._loop_ident = threading.get_ident()
            await asyncio.wait_for(self._join(), timeout)
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_thread, args=(loop,), name=f"anyotp-node-io {self.name}", daemon=True
        )
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._join(), loop)
        await anyio.to_thread.run_sync(fut.result, timeout)

    def _run_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_ident = threading.get_ident()
        loop.run_forever()

    def on_io_thread(self) -> bool:
        """True when called on the thread that runs the NATS client."""
        return threading.get_ident() == self._loop_ident

    def run_io(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the NATS client's loop; returns a concurrent future (do not
        wait for it on that loop's own thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError(f"node {self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def leave(self, timeout: float = 5.0) -> None:
        """Leave the cluster cleanly (peers see nodedown at once); stop the I/O thread."""
        self._stopping = True
        loop = self._loop
        try:
            if loop is None or loop.is_closed():
                return
            if self._thread is None:
                try:
                    await asyncio.wait_for(self._leave(), timeout)
                except Exception as exc:
                    log.debug("node %s: leaving: %r", self.name, exc)
                await _cancel_all(self._background | set(self._tasks))
                return
            await anyio.to_thread.run_sync(self._stop_thread, loop, timeout)
        finally:
            reset_local_node()

    def _stop_thread(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._leave(), loop).result(timeout)
        except Exception as exc:
            log.debug("node %s: leaving: %r", self.name, exc)
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(None), loop).result(timeout)
        except Exception as exc:
            log.debug("node %s: stopping tasks: %r", self.name, exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        if not loop.is_running():
            loop.close()

    async def _connect(self) -> None:
        from nats.aio.client import Client

        opts: dict[str, Any] = {
            "ping_interval": max(1, int(self.heartbeat_timeout / 2)),
            "max_outstanding_pings": 3,
        }
        opts.update(self._connect_options)
        nc = Client()
        try:
            await nc.connect(
                self.urls,
                name=self.name,
                allow_reconnect=False,
                closed_cb=self._on_closed,
                error_cb=self._on_error,
                **opts,
            )
        except BaseException:
            # a refused connection leaves its socket open in the client: close it
            self._refused = True  # its closed callback is not a lost connection
            try:
                await nc.close()
            except Exception as exc:
                log.debug("node %s: closing a refused connection: %r", self.name, exc)
            finally:
                self._refused = False
            transport = getattr(nc, "_transport", None)
            if transport is not None:
                transport.close()
            raise
        self._nc = nc
        self.max_payload = nc.max_payload
        for subject in (self.subject, HB_SUBJECT):
            _inline(await nc.subscribe(subject, cb=self._on_envelope), self._take)
        await nc.subscribe(DISCONNECT_SUBJECT, cb=self._on_disconnect_advisory)

    async def _join(self) -> None:
        self._wake = asyncio.Event()
        self._outq.clear()
        self._burst = False
        await self._connect()
        self.incarnations += 1
        await self._setup_jetstream()
        for peer in await self._read_leases():
            self._node_up(peer)
        self._tasks = [
            asyncio.create_task(self._drain()),
            asyncio.create_task(self._heartbeat()),
        ]
        await self._nc.publish(HB_SUBJECT, self._hb_envelope("hello"))
        await self._nc.flush()
        self._up.set()
        for hook in list(self._reincarnation_hooks):
            try:
                hook()
            except Exception:
                log.exception("node %s: a join hook failed", self.name)

    async def _setup_jetstream(self) -> None:
        self._js = self._nc.jetstream(timeout=2.0)
        try:
            self._leases = await bucket(self._js, LEASES_BUCKET, ttl=self.heartbeat_timeout)
        except Exception as exc:
            self._js = None
            self._leases = None
            log.info("node %s: no JetStream (%r): no node leases, no global names", self.name, exc)

    async def _read_leases(self) -> list[Peer]:
        kv = self._leases
        if kv is None:
            return []
        peers = []
        watcher = await kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:
                    break
                if entry.value is None or entry.operation is not None:
                    continue
                try:
                    kind, name, creation, _, _, cid, _ = self.sealer.open(entry.value)
                except (BadEnvelope, ValueError, TypeError):
                    log.warning("node %s: dropped a lease that failed its check", self.name)
                    continue
                if kind == "hb" and name != self.name and (name, creation) not in self._dead:
                    peers.append(Peer(name, creation, cid))
        finally:
            await watcher.stop()
        return peers

    async def _leave(self) -> None:
        nc = self._nc
        if nc is None or nc.is_closed:
            return
        try:
            await self._flush_queue()
            await nc.publish(HB_SUBJECT, self._hb_envelope("bye"))
            if self._leases is not None:
                await self._leases.delete(subject_token(self.name))
            await nc.flush(timeout=2)
        finally:
            for task in self._tasks:
                task.cancel()
            await nc.close()

    def _hb_envelope(self, kind: str) -> bytes:
        cid = self._nc.client_id if self._nc is not None else None
        return self.sealer.seal((kind, self.name, self.creation, 0, self.name, cid, self.keeper))

    async def _heartbeat(self) -> None:
        period = self.heartbeat_timeout / 4
        key = subject_token(self.name)
        last_tick = time.monotonic()
        while True:
            hb = self._hb_envelope("hb")
            try:
                await self._nc.publish(HB_SUBJECT, hb)
                if self._leases is not None:
                    await self._leases.put(key, hb)
            except Exception as exc:
                log.debug("node %s: heartbeat: %r", self.name, exc)
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - last_tick > self.heartbeat_timeout:
                # This node itself was stalled (stopped, starved) for longer than the
                # timeout: the others have declared it down.  Rejoin as a new one.
                log.warning(
                    "node %s: stalled for %.1f s: rejoining as a new incarnation",
                    self.name,
                    now - last_tick,
                )
                self.spawn(self._nc.close())
                return
            last_tick = now
            for peer in list(self._peers.values()):
                if now - peer.last_seen > self.heartbeat_timeout:
                    self._node_down(peer, "heartbeat timeout")

    # ---------------------------------------------------------- outgoing data

    def post(self, subject: str, data: bytes) -> None:
        """Queue ``data`` for ``subject`` (any thread); sent in call order.

        On the I/O loop's own thread, the first envelope of a burst (nothing queued
        ahead of it) goes to the client at once, from the calling task: a call or a
        reply saves the loop iteration the drain task would take.  What follows in
        the same iteration is queued and batched, as from other threads.
        """
        if (
            not self._outq
            and not self._burst
            and threading.get_ident() == self._loop_ident
            and self._publish_now(subject, data)
        ):
            return
        self._outq.append((subject, data))
        if not self._wake_pending:
            self._wake_pending = True
            wake = self._wake
            if wake is None:
                return
            if threading.get_ident() == self._loop_ident:
                wake.set()
                return
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(wake.set)
                except RuntimeError:
                    pass  # the loop is closed: the node left

    def post_to(self, peer: Peer, kind: str, *fields: Any, what: str = "message") -> None:
        """Seal ``(kind, me, my creation, peer creation, *fields)`` and queue it for
        ``peer``.

        Raises:
            MessageTooLarge: over the server's ``max_payload``.
        """
        data = self.sealer.seal(
            (kind, self.name, self.creation, peer.creation, *fields), self.max_payload, what
        )
        self.post(peer.subject, data)

    def broadcast(self, kind: str, *fields: Any) -> None:
        """Seal an envelope for every node (creation 0) and queue it on ``otp.hb``."""
        data = self.sealer.seal((kind, self.name, self.creation, 0, *fields), self.max_payload)
        self.post(HB_SUBJECT, data)

    def _publish_now(self, subject: str, data: bytes) -> bool:
        # Hand one message to the client without a task switch: its publish only
        # appends to its buffer and wakes its flusher unless that buffer is full (then
        # it would wait for a flush), so drive it to its end here when it is not.
        nc = self._nc
        loop = self._loop
        pending = getattr(nc, "_pending_data_size", None)
        limit = getattr(nc, "_max_pending_size", None)
        if (
            loop is None
            or type(pending) is not int
            or type(limit) is not int
            or (limit > 0 and pending + len(data) + len(subject) + 64 > limit)
            or not nc.is_connected
        ):
            return False
        self._burst = True
        loop.call_soon(self._end_burst)
        coro = nc.publish(subject, data)
        try:
            coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:
            log.debug("node %s: publish to %s: %r", self.name, subject, exc)
            return True
        coro.close()  # it waited for a flush after buffering the message: let it go
        return True

    def _end_burst(self) -> None:
        self._burst = False

    async def _flush_queue(self) -> None:
        # On the I/O loop: hand everything queued to the client, in order.
        nc = self._nc
        q = self._outq
        self._wake_pending = False
        limit = self.max_payload - 64
        while q:
            subject, data = q.popleft()
            if q and q[0][0] == subject and len(data) < limit:
                # Several envelopes for one node: one NATS message (a batch frame
                # of length-prefixed envelopes, each still sealed), in order.  Fewer,
                # larger messages cost both ends far less per envelope.
                parts = [_LEN(len(data)), data]
                size = len(data) + 4
                while q and q[0][0] == subject and size + len(q[0][1]) + 4 <= limit:
                    more = q.popleft()[1]
                    parts += (_LEN(len(more)), more)
                    size += len(more) + 4
                data = BATCH + b"".join(parts) if len(parts) > 2 else data
            try:
                await nc.publish(subject, data)
            except Exception as exc:
                log.debug("node %s: publish to %s: %r", self.name, subject, exc)

    async def _drain(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            await self._flush_queue()

    # ---------------------------------------------------------- incoming data

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` soon on the I/O loop (any thread)."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass  # the loop is closed: the node left

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of the I/O loop (from the I/O loop); the node keeps
        a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def on(self, kind: str, handler: Handler) -> None:
        """Handle envelopes of ``kind`` with ``handler(peer, *fields)`` (I/O loop)."""
        self._handlers[kind] = handler

    def on_nodeup(self, hook: Callable[[Peer], None]) -> None:
        """Call ``hook(peer)`` on the I/O loop when a node comes up."""
        self._nodeup_hooks.append(hook)

    def on_nodedown(self, hook: Callable[[Peer, str], None]) -> None:
        """Call ``hook(peer, why)`` on the I/O loop when a node goes down."""
        self._nodedown_hooks.append(hook)

    def on_join(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` on the I/O loop each time this node (re)joins."""
        self._reincarnation_hooks.append(hook)

    async def _on_envelope(self, msg: Any) -> None:
        self._take(msg)

    def _take(self, msg: Any) -> None:
        # One NATS message on the node's subjects (in the client's reading task).
        try:
            self._take_envelopes(msg)
        except Exception:
            log.exception("node %s: handling a message on %s failed", self.name, msg.subject)

    def _take_envelopes(self, msg: Any) -> None:
        data = msg.data
        if data[:1] != BATCH:
            self._receive(data, msg.subject)
            return
        i, end = 1, len(data)
        while i + 4 <= end:
            n = int.from_bytes(data[i : i + 4], "big")
            self._receive(data[i + 4 : i + 4 + n], msg.subject)
            i += 4 + n

    def _receive(self, data: bytes, subject: str) -> None:
        try:
            env = self.sealer.open(data)
        except BadEnvelope as exc:
            log.warning("node %s: dropped an envelope on %s: %s", self.name, subject, exc)
            return
        except Exception as exc:
            log.warning("node %s: dropped an undecodable envelope: %r", self.name, exc)
            return
        try:
            kind, src, src_creation, dst_creation, *fields = env
        except (TypeError, ValueError):
            log.warning("node %s: dropped a malformed envelope", self.name)
            return
        if src == self.name:
            return
        if dst_creation not in (0, self.creation):
            log.info(
                "node %s: dropped a %r envelope from %s for a previous incarnation",
                self.name,
                kind,
                src,
            )
            return
        if kind == "disowned":
            self._on_disowned(src, *fields)
            return
        if (src, src_creation) in self._dead:
            log.info(
                "node %s: dropped a %r envelope from a dead incarnation of %s",
                self.name,
                kind,
                src,
            )
            if kind != "bye":
                self._disown(src, src_creation)
            return
        peer = self._peers.get(src)
        if peer is None or peer.creation != src_creation:
            if kind in ("hb", "hello"):
                peer = Peer(src, src_creation, fields[1])
            elif kind == "bye":
                return
            else:
                # A signal from a node not (yet) seen up: it is up.
                peer = Peer(src, src_creation, None)
            self._node_up(peer)
        peer.last_seen = time.monotonic()
        handler = self._handlers.get(kind)
        if handler is None:
            log.warning("node %s: no handler for %r envelopes from %s", self.name, kind, src)
            return
        try:
            handler(peer, *fields)
        except Exception:
            log.exception("node %s: handling a %r envelope from %s failed", self.name, kind, src)

    def _on_hb(self, peer: Peer, name: str, cid: int | None, keeper: Any) -> None:
        if cid is not None:
            peer.cid = cid
        if type(keeper) is PID:
            peer.keeper = keeper

    def _on_hello(self, peer: Peer, name: str, cid: int | None, keeper: Any) -> None:
        # A newcomer: tell it about us at once.
        self._on_hb(peer, name, cid, keeper)
        self.post(peer.subject, self._hb_envelope("hb"))

    def _on_bye(self, peer: Peer, *_: Any) -> None:
        self._node_down(peer, "left")

    def _on_disowned(self, src: str, creation: int) -> None:
        if creation == self.creation and not self._stopping:
            log.warning("node %s: %s saw this incarnation down: rejoining", self.name, src)
            self.spawn(self._nc.close())

    def _disown(self, name: str, creation: int) -> None:
        subject = f"{PREFIX}.node.{subject_token(name)}"
        self.post(subject, self.sealer.seal(("disowned", self.name, self.creation, 0, creation)))

    async def _on_disconnect_advisory(self, msg: Any) -> None:
        try:
            client = json.loads(msg.data)["client"]
            name, cid = client.get("name"), client.get("id")
        except (ValueError, KeyError, TypeError):
            return
        peer = self._peers.get(name)
        if peer is not None and (peer.cid is None or peer.cid == cid):
            self._node_down(peer, "disconnected")

    async def _on_closed(self) -> None:
        if self._stopping or self._refused:
            return
        log.warning("node %s: lost its NATS connection: every node is down; rejoining", self.name)
        self._up.clear()
        for task in self._tasks:
            task.cancel()
        for peer in list(self._peers.values()):
            # not remembered as dead: they were not, this node was; the new
            # incarnation meets them again
            self._node_down(peer, "connection lost", remember=False)
        self._outq.clear()
        self.creation = new_creation()
        set_local_node(self.name, self.creation)
        delay = 0.05
        while not self._stopping:
            try:
                await self._join()
                log.warning("node %s: rejoined as a new incarnation", self.name)
                return
            except Exception as exc:
                log.info("node %s: rejoin failed (%r); retrying in %.1f s", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("node %s: NATS error: %r", self.name, exc)

    # ------------------------------------------------------------- membership

    def _node_up(self, peer: Peer) -> None:
        old = self._peers.get(peer.name)
        if old is not None:
            if old.creation == peer.creation:
                return
            self._node_down(old, "restarted")
        self._peers[peer.name] = peer
        log.info("node %s: nodeup %s", self.name, peer.name)
        for hook in list(self._nodeup_hooks):
            try:
                hook(peer)
            except Exception:
                log.exception("node %s: a nodeup hook failed", self.name)
        with self._lock:
            watchers = list(self._all_watchers)
        for pid in watchers:
            _tell(pid, ("nodeup", peer.name))

    def _node_down(self, peer: Peer, why: str, remember: bool = True) -> None:
        if self._peers.get(peer.name) is not peer:
            return
        del self._peers[peer.name]
        if remember:
            self._dead[(peer.name, peer.creation)] = None
        while len(self._dead) > _DEAD_KEPT:
            self._dead.popitem(last=False)
        log.info("node %s: nodedown %s (%s)", self.name, peer.name, why)
        for hook in list(self._nodedown_hooks):
            try:
                hook(peer, why)
            except Exception:
                log.exception("node %s: a nodedown hook failed", self.name)
        with self._lock:
            watchers = self._node_watchers.pop(peer.name, [])
            watchers += self._all_watchers
        for pid in watchers:
            _tell(pid, ("nodedown", peer.name))

    def peer(self, name: str) -> Peer | None:
        """The peer named ``name`` if it is up."""
        return self._peers.get(name)

    def peer_of(self, pid: PID) -> Peer | None:
        """The peer that owns ``pid``, if it is up and ``pid`` is of its incarnation."""
        node, creation, _ = pid_to_wire(pid)
        peer = self._peers.get(node)
        if peer is None or (creation and creation != peer.creation):
            return None
        return peer

    def nodes(self) -> list[str]:
        """Names of the other nodes that are up, sorted."""
        return sorted(self._peers)

    def monitor_node(self, name: str, watcher: PID, flag: bool = True) -> None:
        """Send ``("nodedown", name)`` to ``watcher`` when ``name`` goes down (at once if
        it is not up); ``flag=False`` removes one such monitor."""
        with self._lock:
            watchers = self._node_watchers.setdefault(name, [])
            if not flag:
                if watcher in watchers:
                    watchers.remove(watcher)
                return
            up = name in self._peers
            if up:
                watchers.append(watcher)
        if not up:
            _tell(watcher, ("nodedown", name))

    def monitor_nodes(self, watcher: PID, flag: bool = True) -> None:
        """Send ``("nodeup", name)`` / ``("nodedown", name)`` to ``watcher`` for every
        node; ``flag=False`` stops it."""
        with self._lock:
            if flag:
                self._all_watchers.append(watcher)
            elif watcher in self._all_watchers:
                self._all_watchers.remove(watcher)

    def wait_joined(self, timeout: float | None) -> bool:
        """Block until the node is connected; False on timeout."""
        return self._up.wait(timeout)


async def bucket(js: Any, name: str, ttl: float | None = None) -> Any:
    """Bind to the KV bucket ``name``, creating it (history 1, ``ttl`` seconds per
    entry, None = forever) if it does not exist.  The first node's settings stay."""
    import nats.js.errors

    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(bucket=name, history=1, ttl=ttl)
    except nats.js.errors.BadRequestError:
        return await js.key_value(name)  # created meanwhile by another node


class _Inline(asyncio.Queue[Any]):
    """A subscription's queue that hands each message to ``take`` at once."""

    def __init__(self, sub: Any, take: Callable[[Any], None]) -> None:
        super().__init__()
        self._sub = sub
        self._take = take

    def put_nowait(self, item: Any) -> None:
        self._sub._pending_size -= len(item.data)
        self._take(item)


def _inline(sub: Any, take: Callable[[Any], None]) -> None:
    """Have the client's reading task hand ``sub``'s messages to ``take`` as it parses
    them, in order, rather than queue them for the subscription's task: the task
    switch it saves is one loop iteration per message received (a call's request, its
    reply).  A client without that queue keeps its task."""
    old = getattr(sub, "_pending_queue", None)
    if type(old) is not asyncio.Queue or not hasattr(sub, "_pending_size"):
        return
    sub._pending_queue = _Inline(sub, take)
    while not old.empty():  # arrived meanwhile: first, in order
        msg = old.get_nowait()
        sub._pending_size -= len(msg.data)
        take(msg)


def _is_nats_task(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and f"{os.sep}nats{os.sep}" in code.co_filename


async def _cancel_all(tasks: set[asyncio.Task[Any]] | None) -> None:
    """Cancel ``tasks`` (None: every task of the loop but this one) and the tasks the
    NATS client left behind; wait for them."""
    me = asyncio.current_task()
    if tasks is None:
        tasks = set(asyncio.all_tasks())
    else:
        tasks = set(tasks) | {t for t in asyncio.all_tasks() if _is_nats_task(t)}
    if me is not None:
        tasks.discard(me)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _tell(pid: PID, message: Any) -> None:
    send_nowait(pid, message)  # dropped if the watcher is gone
