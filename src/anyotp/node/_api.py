"""The public functions of ``anyotp.node``, on the node this OS process runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio

from .._core import PID, call, self_pid, set_global_registry, set_transport
from .._core import is_alive as _core_is_alive
from .._exceptions import NoProcess, StartError
from ._codec import Codec
from ._global import GlobalNames
from ._keeper import Keeper
from ._node import DEFAULT_HEARTBEAT_TIMEOUT, Node
from ._pg import Groups
from ._server import NatsServer
from ._transport import NatsTransport

__all__ = [
    "is_alive",
    "join",
    "leave",
    "local_members",
    "members",
    "monitor_node",
    "monitor_nodes",
    "node",
    "nodes",
    "register_name",
    "registered_names",
    "spawn",
    "start",
    "this_node",
    "unregister_name",
    "whereis_name",
]

#: What ``node()`` answers when this OS process is not a node (as Erlang's).
NONODE: Final = "nonode@nohost"

_COOKIE_ENV: Final = "ANYOTP_COOKIE"

_current: Node | None = None
_names: GlobalNames | None = None
_groups: Groups | None = None


def this_node() -> Node:
    """The running :class:`Node`.

    Raises:
        RuntimeError: this OS process is not a node; start one with
            ``async with anyotp.node.start(name): ...``.
    """
    n = _current
    if n is None:
        raise RuntimeError(
            "this OS process is not a node: start one with "
            "`async with anyotp.node.start('name', url=...)`"
        )
    return n


def _full_name(name: str, host: str | None) -> str:
    if not name or any(c in name for c in " \t\n*>"):
        raise ValueError(f"a node name is a non-empty word like 'worker1', got {name!r}")
    if "@" in name:
        return name
    return f"{name}@{host or socket.gethostname().split('.')[0]}"


@contextlib.asynccontextmanager
async def start(
    name: str,
    url: str | list[str] | None = None,
    cookie: str | bytes | None = None,
    *,
    codec: str | Codec = "pickle",
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    host: str | None = None,
    connect_timeout: float = 10.0,
    io_thread: bool | None = None,
    **connect_options: Any,
) -> AsyncIterator[Node]:
    """Make this OS process the node ``name@host`` for the duration of the block;
    like ``net_kernel:start/1``.

    Leaving the block leaves the cluster cleanly: the other nodes see ``nodedown`` at
    once, and the names and group memberships of this node's processes are dropped.

    Args:
        name: the node's name; ``@<host>`` is added unless it has one.
        url: the NATS server(s), e.g. ``"nats://10.0.0.5:4222"``; None starts an
            embedded ``nats-server`` on a free loopback port (development and tests),
            stopped when the block exits.
        cookie: the cluster secret every node shares; every envelope is signed with
            it.  None reads ``$ANYOTP_COOKIE``; with an embedded server and no
            ``$ANYOTP_COOKIE``, a random one (``node.cookie``) is made.
        codec: ``"pickle"`` (any Python object; default) or ``"msgpack"`` (data only,
            no code runs on load).
        heartbeat_timeout: seconds a silent node is given before it is declared down
            (Erlang's ``net_ticktime``); heartbeats go every quarter of it.
        host: the host part of the name; None uses this machine's short host name.
        connect_timeout: seconds to wait for the first connection.
        io_thread: run the NATS client (nats-py, asyncio only) on a dedicated asyncio
            thread.  None (default): on asyncio it runs on the application's loop
            (fastest); under trio on a thread (required).  With it on the loop, the
            blocking ``register_name`` must not be called from the loop's thread:
            run it with ``anyio.to_thread.run_sync``, or pass ``io_thread=True``.
        **connect_options: passed to ``nats.connect``: ``user``, ``password``,
            ``token``, ``nkeys_seed``, ``user_credentials``, ``tls``, ...

    Yields:
        The :class:`Node`.

    Raises:
        RuntimeError: this OS process is already a node.
        ValueError: a bad name or cookie, or no cookie with a URL (set
            ``$ANYOTP_COOKIE`` or pass ``cookie=``).
        TimeoutError: no connection to ``url`` within ``connect_timeout``.
        ConnectionError: the server refused the connection (credentials, TLS) or
            could not be reached; the message quotes the client's error.
    """
    global _current, _names, _groups
    if _current is not None:
        raise RuntimeError(f"this OS process is already node {_current.name}: one node per process")
    full = _full_name(name, host)
    if cookie is None:
        cookie = os.environ.get(_COOKIE_ENV)
    server: NatsServer | None = None
    if cookie is None:
        if url is not None:
            raise ValueError(
                f"node {full}: no cookie: pass cookie= (the secret every node of the "
                f"cluster shares) or set ${_COOKIE_ENV}"
            )
        cookie = os.urandom(16).hex()
    if url is None:
        server = await anyio.to_thread.run_sync(NatsServer.start)
        url = server.url
    n = Node(
        full,
        url,
        cookie,
        codec=codec,
        heartbeat_timeout=heartbeat_timeout,
        connect_options=connect_options,
    )
    n.server = server
    names = GlobalNames(n)  # before joining: they handle what comes at once
    groups = Groups(n)
    transport = NatsTransport(n)
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            # the keeper first: its PID goes out in the first heartbeat
            n.keeper = await Keeper.start(task_group=tg)
            if io_thread is None:
                io_thread = not _on_asyncio()
            try:
                await n.join(io_thread, connect_timeout)
            except TimeoutError:
                failure = TimeoutError(
                    f"node {full}: no connection to NATS at {url} within "
                    f"{connect_timeout} s: is the server running and reachable?"
                )
            except Exception as e:
                failure = ConnectionError(
                    f"node {full}: could not connect to NATS at {url}: {e!r}; check the "
                    "URL and the credentials (user=/password=, token=, nkeys_seed=, "
                    "user_credentials=, tls=)"
                )
                failure.__cause__ = e
            if failure is not None:
                tg.cancel_scope.cancel()
            else:
                try:
                    _current, _names, _groups = n, names, groups
                    set_transport(transport)
                    set_global_registry(names)
                    await anyio.to_thread.run_sync(names.wait_synced, connect_timeout)
                    yield n
                finally:
                    tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        set_global_registry(None)
        set_transport(None)
        _current = _names = _groups = None
        n.keeper = None
        with anyio.CancelScope(shield=True):
            await n.leave()
            if server is not None:
                await anyio.to_thread.run_sync(server.stop)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False  # trio
    return True


async def spawn(
    node: str, cls: type[Any] | str, *args: Any, timeout: float | None = 5.0, **kwargs: Any
) -> PID:
    """Start a process on another node; like ``erlang:spawn/4``.

    The remote node imports the class by its qualified name and starts it (with
    ``*args``/``**kwargs`` for its ``init``) among the children of its keeper process,
    which stops it when the node leaves.  The class must be importable there.

    Args:
        node: the node's name (``"worker1@host"``).
        cls: a process class (an ``Actor``, ``GenServer``... subclass) or its
            qualified name ``"package.module:Class"``.
        timeout: seconds to wait for the remote start; None waits forever.

    Returns:
        The new process's PID.

    Raises:
        NoProcess: ``node`` is not up.
        StartError: the class could not be imported or its ``init`` failed there.
        CallExit: the node was lost meanwhile (reason ``"noconnection"``).
        CallTimeout: no answer within ``timeout``.
    """
    n = this_node()
    peer = n.peer(node)
    if peer is None or peer.keeper is None:
        raise NoProcess(f"spawn({node!r}, ...): that node is not up (nodes(): {n.nodes()})", node)
    qualname = cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"
    result = await call(peer.keeper, ("spawn", qualname, args, kwargs), timeout)
    match result:
        case ("ok", PID() as pid):
            return pid
        case ("error", str(message)):
            raise StartError(f"spawn of {qualname} on {node} failed: {message}", message)
    raise StartError(f"spawn of {qualname} on {node}: unexpected answer {result!r}", result)


# ------------------------------------------------------------- net_kernel


def node(pid: PID | None = None) -> str:
    """This node's name (``"nonode@nohost"`` when not distributed), or the name of the
    node that owns ``pid``; like ``erlang:node/0,1``."""
    if pid is None or pid.is_local:
        return NONODE if _current is None else _current.name
    return pid.node


def nodes() -> list[str]:
    """The other nodes that are up, sorted; like ``erlang:nodes/0``.  Empty when not
    distributed."""
    return [] if _current is None else _current.nodes()


def monitor_node(name: str, flag: bool = True) -> None:
    """The calling process gets ``("nodedown", name)`` when node ``name`` goes down, at
    once if it is not up; like ``erlang:monitor_node/2``.  ``flag=False`` removes one
    such monitor.

    Raises:
        NotInProcess: called outside a process.
        RuntimeError: this OS process is not a node.
    """
    this_node().monitor_node(name, self_pid(), flag)


def monitor_nodes(flag: bool = True) -> None:
    """The calling process gets ``("nodeup", name)`` and ``("nodedown", name)`` for
    every node from now on; like ``net_kernel:monitor_nodes/1``.  ``flag=False`` stops.

    Raises:
        NotInProcess: called outside a process.
        RuntimeError: this OS process is not a node.
    """
    this_node().monitor_nodes(self_pid(), flag)


def is_alive(pid: PID) -> bool:
    """True if ``pid`` names a live process: for a local one, as ``anyotp.is_alive``;
    for a remote one, as far as this node knows (its node is up, in the incarnation
    that made the PID).  Like ``erlang:is_process_alive/1`` plus node liveness."""
    return _core_is_alive(pid)


# ------------------------------------------------------------- global


def _global() -> GlobalNames:
    if _names is None:
        this_node()
    assert _names is not None
    return _names


def register_name(name: str, pid: PID) -> bool:
    """Register ``pid`` under the cluster-wide ``name``; like
    ``global:register_name/2``.  The first registration wins, atomically across
    the cluster; the name is released when the process exits or its node is lost.
    Blocks for one round trip to the NATS server (about a millisecond).

    Returns:
        True if registered; False if a live process holds ``name``.

    Raises:
        TypeError: ``name`` is not a non-empty str.
        NoProcess: ``pid`` is not a live local process.
        RuntimeError: not a node, or the server has no JetStream.
        TimeoutError: the server did not answer within 5 s.
    """
    return _global().register_name(name, pid)


def unregister_name(name: str) -> None:
    """Remove the global ``name``; like ``global:unregister_name/1``."""
    _global().unregister_name(name)


def whereis_name(name: str) -> PID | None:
    """The PID registered under the global ``name``, or None; like
    ``global:whereis_name/1``.  Answers from this node's cache without blocking."""
    return _global().whereis_name(name)


def registered_names() -> list[str]:
    """Every global name, sorted; like ``global:registered_names/0``."""
    return _global().registered_names()


# ------------------------------------------------------------- pg


def _pg() -> Groups:
    if _groups is None:
        this_node()
    assert _groups is not None
    return _groups


def join(group: Any, pid: PID) -> None:
    """Add the local process ``pid`` to ``group``; like ``pg:join/2``.  It leaves the
    group when it exits.

    Raises:
        NoProcess: ``pid`` is not a live local process.
        RuntimeError: this OS process is not a node.
    """
    _pg().join(group, pid)


def leave(group: Any, pid: PID) -> bool:
    """Remove the local process ``pid`` from ``group`` once; like ``pg:leave/2``.

    Returns:
        False if it was not a member.
    """
    return _pg().leave(group, pid)


def members(group: Any) -> list[PID]:
    """The members of ``group`` on every node that is up; like ``pg:get_members/1``."""
    return _pg().members(group)


def local_members(group: Any) -> list[PID]:
    """The members of ``group`` on this node; like ``pg:get_local_members/1``."""
    return _pg().local_members(group)
