"""Routing: every operation that takes a target goes through :func:`route`.

A target is a PID, a registered name (str) or a via-name (``Via(registry, key)``,
``("via", registry, key)``, ``("global", name)``).  :func:`route` turns it into the
live local process, the *transport* to the node that owns it, or None (a dead PID).
Only a local table exists in the core; ``anyotp.node`` installs a transport
(:func:`set_transport`) for PIDs of other nodes, and feeds what arrives from them
back through the ``deliver_*`` / ``accept_*`` functions here.

Send semantics are Erlang's, so code works the same whether a PID is local or not:
a message to a dead PID is dropped silently (``Pid ! Msg``); a message to a name that
is not registered raises :class:`~anyotp.NoProcess` (Erlang's ``badarg``).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from .._exceptions import NoProcess, NotInProcess
from ._backend import current_loop
from ._ids import LOCAL, PID, Ref
from ._names import Target, names, resolve_via
from ._process import (
    _REDUCTION_MASK,
    DEAD,
    EXITING,
    ExitHook,
    Proc,
    current_process,
    on_exit,
    set_remote_hooks,
    table,
)

_get_ident = threading.get_ident

__all__ = [
    "CAST_TAG",
    "MonitorHook",
    "Target",
    "Transport",
    "accept_demonitor",
    "accept_link",
    "accept_monitor",
    "accept_unlink",
    "cast",
    "cast_nowait",
    "deliver_down",
    "deliver_exit",
    "demonitor",
    "exit_process",
    "get_transport",
    "is_alive",
    "link",
    "lookup",
    "monitor",
    "noproc_message",
    "processes",
    "require_current",
    "route",
    "self_pid",
    "send",
    "send_nowait",
    "set_transport",
    "unlink",
    "watch_remote",
]

#: Head of a cast message: ``("$gen_cast", request)``, like OTP's ``$gen_cast``.
CAST_TAG = "$gen_cast"


class Transport(Protocol):
    """How signals reach processes of other nodes (``anyotp.node`` implements it).

    Every method is non-blocking and callable from any thread, and keeps the order of
    calls between one sender and one receiver: messages, links, exits and DOWNs.
    """

    def send(self, to: PID, message: Any) -> None:
        """A message to a remote PID (at most once; dropped if its node is gone)."""

    def exit(self, sender: PID | None, to: PID, reason: Any, linked: bool) -> None:
        """An exit signal (``linked``: from a dying linked process)."""

    def link(self, local: PID, remote: PID) -> None:
        """The local process linked itself to the remote one."""

    def unlink(self, local: PID, remote: PID) -> None:
        """The local process removed its link to the remote one."""

    def monitor(self, watcher: PID | None, ref: Ref, target: PID) -> None:
        """A local watcher monitors a remote process under ``ref``."""

    def demonitor(self, ref: Ref, target: PID) -> None:
        """The monitor ``ref`` of a remote process was removed."""

    def call(self, watcher: PID | None, ref: Ref, target: PID, message: Any) -> None:
        """A call: :meth:`monitor` ``target`` under ``ref``, then :meth:`send` it
        ``message``, as one signal (a reply to ``ref`` may end the monitor)."""

    def down(self, ref: Ref, pid: PID, reason: Any) -> None:
        """A local process that a remote watcher monitored (``ref``) died."""

    def reply(self, ref: Ref, value: Any) -> None:
        """The reply to a call whose caller is on the node of ``ref``."""

    def is_alive(self, pid: PID) -> bool:
        """Best effort: whether the remote process may be alive."""


_transport: Transport | None = None
#: monitors local watchers hold on remote processes (calls included): ref -> hook
_remote_watches: dict[Ref, ExitHook] = {}


def set_transport(transport: Transport | None) -> None:
    """Install the transport for PIDs of other nodes (None removes it)."""
    global _transport
    _transport = transport


def get_transport() -> Transport | None:
    """The installed transport, or None."""
    return _transport


def _remote_exit(sender: PID, to: PID, reason: Any) -> None:
    t = _transport
    if t is not None:
        t.exit(sender, to, reason, True)


def _remote_demonitor(ref: Ref, target: PID) -> None:
    _remote_watches.pop(ref, None)
    t = _transport
    if t is not None:
        t.demonitor(ref, target)


set_remote_hooks(_remote_exit, _remote_demonitor)


# ---------------------------------------------------------------- resolution


def noproc_message(what: str, target: Any) -> str:
    """The error text for an operation on a target that is not alive."""
    if type(target) is str:
        return (
            f"{what} to {target!r} failed: no process is registered under that name "
            f"(registered names: {sorted(names)[:10]})"
        )
    if type(target) is PID:
        return (
            f"{what} to {target!r} failed: that process is not alive (it exited, or never existed)"
        )
    return (
        f"{what} to {target!r} failed: no process registered under that via-name is "
        "alive (it exited, or was never registered)"
    )


def lookup(target: Target, what: str) -> PID:
    """The PID a registered name or via-name stands for (a PID is returned as is).

    Raises:
        NoProcess: nothing is registered under the name, or its registry is dead.
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    if type(target) is PID:
        return target
    if type(target) is str:
        proc = names.get(target)
        if proc is None:
            raise NoProcess(noproc_message(what, target), target)
        return proc.pid
    via = resolve_via(target)
    if via is None:
        raise TypeError(
            f"{what}: expected a PID, a registered name (str) or a via-name "
            f'(Via(registry, key), ("via", registry, key), ("global", name)), '
            f"got {type(target).__name__} {target!r}"
        )
    pid = via[0].whereis_name(via[1])
    if pid is None:
        raise NoProcess(noproc_message(what, target), target)
    return pid


def route(target: Target, what: str = "send()") -> Proc | Transport | None:
    """Where a signal to ``target`` goes: the live local process, the transport of a
    remote PID, or None (a dead PID, or a remote one with no transport).

    Raises:
        NoProcess: ``target`` is a name that is not registered.
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    pid = target if type(target) is PID else lookup(target, what)
    proc = pid._proc
    if proc is not None:
        return proc
    if pid._node is LOCAL:
        return None
    return _transport


def require_current(what: str) -> Proc:
    """The calling process.

    Raises:
        NotInProcess: called outside any process.
    """
    proc = current_process()
    if proc is None:
        raise NotInProcess(f"{what} acts on the calling process: call it from inside a process")
    return proc


# ------------------------------------------------------------------- sending


def send_nowait(target: Target, message: Any) -> None:
    """Send ``message`` to a process's mailbox now; like Erlang's ``!``.

    A plain function: it never blocks and works from any thread.  Messages from one
    sender to one receiver arrive in the order sent.  A message to a dead process is
    dropped silently, as in Erlang (a successful send never meant it would be
    handled: the receiver may die first); use ``call`` or a monitor to know.

    Args:
        target: a PID, a registered name or a via-name.
        message: any object; it is not copied (locally).

    Raises:
        NoProcess: ``target`` is a name nobody registered (or whose registry is dead).
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    if type(target) is PID:
        proc = target._proc
        if proc is None:
            if target._node is not LOCAL and _transport is not None:
                _transport.send(target, message)
            return
    else:
        dest = route(target, "send()")
        if type(dest) is not Proc:
            if dest is not None:
                dest.send(lookup(target, "send()"), message)  # type: ignore[union-attr]
            return
        proc = dest
    # Mailbox.put, inlined (bench: casts, ping_pong): append, then wake.
    mbox = proc.mbox
    mbox.queue.append(message)
    if mbox.waiter is not None:
        mbox.notify(proc.loop.tid)


def cast_nowait(target: Target, request: Any) -> None:
    """Send ``request`` to a GenServer now, without waiting; like ``gen_server:cast/2``.

    The server's ``handle_cast(request, state)`` handles it.  Never blocks; works
    from any thread.  A cast to a dead process is dropped, as in OTP.

    Raises:
        NoProcess: ``target`` is a name nobody registered.
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    if type(target) is not PID:
        # resolved here, not in send_nowait, so an error names cast() and keeps its
        # cause (an unknown name, a missing key, a dead registry)
        target = lookup(target, "cast()")
    proc = target._proc
    if proc is None:
        send_nowait(target, (CAST_TAG, request))  # a remote or a dead PID
        return
    # Mailbox.put, inlined (bench: cast_throughput): append, then wake.
    mbox = proc.mbox
    mbox.queue.append((CAST_TAG, request))
    if mbox.waiter is not None:
        mbox.notify(proc.loop.tid)


_sends = 0


def _spent() -> bool:
    """Count one awaited send; True when the reduction budget is spent (checkpoint)."""
    global _sends
    _sends += 1
    return not _sends & _REDUCTION_MASK


async def send(target: Target, message: Any) -> None:
    """Send ``message`` to a process's mailbox; like Erlang's ``!``.

    The message is delivered before the first suspension, in order per sender and
    receiver; a message to a dead process is dropped silently, as in Erlang.  Every
    :data:`~anyotp._core.REDUCTIONS` sends it yields to the event loop (a checkpoint,
    where cancellation is delivered), so a sending loop cannot starve its siblings.
    From a plain thread, or where you must not yield, use :func:`send_nowait`.

    Args:
        target: a PID, a registered name or a via-name.
        message: any object; it is not copied (locally).

    Raises:
        NoProcess: ``target`` is a name nobody registered (or whose registry is dead).
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    send_nowait(target, message)
    if _spent():
        await _checkpoint()


async def cast(target: Target, request: Any) -> None:
    """Send ``request`` to a GenServer without waiting for it; like ``gen_server:cast/2``.

    As :func:`send`, with the message ``("$gen_cast", request)``: delivered at once,
    dropped if the server is dead, and a checkpoint every few casts.  From a plain
    thread use :func:`cast_nowait`.

    Raises:
        NoProcess: ``target`` is a name nobody registered.
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    cast_nowait(target, request)
    if _spent():
        await _checkpoint()


async def _checkpoint() -> None:
    loop = current_loop()
    if loop is not None and loop.checkpoint is not None:
        await loop.checkpoint()


# ----------------------------------------------------------- links and monitors


class MonitorHook:
    """A monitor held by ``watcher`` under ``ref``: on death, a DOWN message to it."""

    __slots__ = ("ref", "watcher")

    def __init__(self, ref: Ref, watcher: Proc) -> None:
        self.ref = ref
        self.watcher = watcher

    def down(self, pid: PID, reason: Any) -> None:
        w = self.watcher
        if w.monitoring.pop(self.ref, None) is not None:
            w.mbox.put(("DOWN", self.ref, "process", pid, reason))


def link(target: Target) -> None:
    """Link the calling process to ``target``; like ``erlang:link/1``.

    When either exits, the other gets an exit signal with the same reason.

    Raises:
        NotInProcess: called outside a process.
        NoProcess: ``target`` is not alive and the caller does not trap exits (a
            trapping caller gets ``("EXIT", target, "noproc")`` instead).
    """
    me = require_current("link()")
    dest = route(target, "link()")
    if dest is None or (type(dest) is Proc and dest.status is DEAD):
        if me.body.trap_exit:
            me.mbox.put(("EXIT", target, "noproc"))
            return
        raise NoProcess(noproc_message("link()", target), target)
    if type(dest) is not Proc:
        pid = lookup(target, "link()")
        me.links[pid] = None
        dest.link(me.pid, pid)  # type: ignore[union-attr]
        return
    if dest is me:
        return
    me.links[dest.pid] = None
    dest.links[me.pid] = None
    if dest.status is DEAD:  # raced with its death
        me.links.pop(dest.pid, None)
        me.signal_exit(dest.pid, dest.exit_reason, linked=True)


def unlink(target: Target) -> None:
    """Remove a link between the calling process and ``target``; like ``unlink/1``.

    Unlinking a process that is not linked (or dead) does nothing.
    """
    me = require_current("unlink()")
    try:
        pid = lookup(target, "unlink()")
    except NoProcess:
        return
    me.links.pop(pid, None)
    proc = pid._proc
    if proc is not None:
        proc.links.pop(me.pid, None)
    elif pid._node is not LOCAL and _transport is not None:
        _transport.unlink(me.pid, pid)


def monitor(target: Target) -> Ref:
    """Monitor ``target`` from the calling process; like ``erlang:monitor(process, T)``.

    When ``target`` exits, the caller receives ``("DOWN", ref, "process", pid, reason)``
    once.  If it is already dead (or the name is unknown), that message arrives at
    once with reason ``"noproc"``.

    Returns:
        The monitor's reference, for :func:`demonitor` and for matching the DOWN.

    Raises:
        NotInProcess: called outside a process.
    """
    me = require_current("monitor()")
    ref = Ref()
    try:
        pid = lookup(target, "monitor()")
    except NoProcess:
        me.mbox.put(("DOWN", ref, "process", target, "noproc"))
        return ref
    proc = pid._proc
    if proc is None:
        if pid._node is not LOCAL and _transport is not None:
            me.monitoring[ref] = pid
            _remote_watches[ref] = MonitorHook(ref, me)
            _transport.monitor(me.pid, ref, pid)
            return ref
        me.mbox.put(("DOWN", ref, "process", target, "noproc"))
        return ref
    me.monitoring[ref] = pid
    on_exit(proc, MonitorHook(ref, me), ref)
    return ref


def demonitor(ref: Ref, *, flush: bool = False) -> bool:
    """Remove the monitor ``ref``; like ``erlang:demonitor/2``.

    Args:
        ref: a reference returned by :func:`monitor`.
        flush: also remove its DOWN message if one already arrived.

    Returns:
        True if the monitor was active (no DOWN delivered yet), False otherwise.
    """
    me = require_current("demonitor()")
    target = me.monitoring.pop(ref, None)
    if target is not None:
        p = target._proc
        if p is not None:
            p.monitors.pop(ref, None)
        elif target._node is not LOCAL:
            _remote_demonitor(ref, target)
    if flush:
        me.mbox.remove_first(
            lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN" and m[1] == ref
        )
    return target is not None


def watch_remote(
    ref: Ref, hook: ExitHook, watcher: PID | None, target: PID, message: Any = None
) -> bool:
    """Monitor the remote ``target`` under ``ref`` with ``hook`` (a call's ``From``),
    and send it ``message`` in the same signal if it is not None (a call's request);
    False if there is no transport to reach it."""
    t = _transport
    if t is None:
        return False
    _remote_watches[ref] = hook
    if message is None:
        t.monitor(watcher, ref, target)
    else:
        t.call(watcher, ref, target, message)
    return True


def exit_process(target: Target, reason: Any) -> None:
    """Send an exit signal to ``target``; like ``erlang:exit/2`` (``Process.exit/2``).

    ``"kill"`` always kills (the victim exits with ``"killed"``); ``"normal"`` is
    ignored unless the target traps exits (then it receives an ``EXIT`` message), or
    is the caller itself; any other reason kills the target unless it traps exits.
    A signal a process sends itself takes effect before ``exit_process`` returns.
    A signal to a dead process is dropped.

    Raises:
        NoProcess: ``target`` is a name nobody registered.
    """
    dest = route(target, "exit_process()")
    if dest is None:
        return
    me = current_process()
    sender = me.pid if me is not None else None
    if type(dest) is not Proc:
        dest.exit(sender, lookup(target, "exit_process()"), reason, False)  # type: ignore[union-attr]
        return
    if dest is me:
        if type(reason) is str and reason == "kill":
            me.exit_self("killed")
            return
        if not me.body.trap_exit:
            me.exit_self(reason)
            return
    dest.signal_exit(sender, reason)


def is_alive(target: Target) -> bool:
    """True if ``target`` names a live process; like ``erlang:is_process_alive/1``.

    For a PID of another node, whether its node is connected (best effort).
    """
    try:
        dest = route(target, "is_alive()")
    except NoProcess:
        return False
    if dest is None:
        return False
    if type(dest) is Proc:
        return dest.status < EXITING
    return dest.is_alive(lookup(target, "is_alive()"))  # type: ignore[union-attr]


# ----------------------------------------------------- from the transport (remote)


def deliver_exit(to: PID, sender: PID | None, reason: Any, linked: bool) -> None:
    """An exit signal from a remote process to the local ``to``.  Any thread."""
    proc = to._proc
    if proc is None:
        return
    # links map PID -> None: pop() gives 0 when the link is gone, and then the exit
    # of a link is not for this process any more
    if linked and (sender is None or proc.links.pop(sender, 0) is not None):
        return
    proc.signal_exit(sender, reason, linked)


def accept_link(local: PID, remote: PID) -> bool:
    """A remote process linked itself to ``local``; False if ``local`` is dead."""
    proc = local._proc
    if proc is None or proc.status is DEAD:
        return False
    proc.links[remote] = None
    if proc.status is DEAD:
        proc.links.pop(remote, None)
        return False
    return True


def accept_unlink(local: PID, remote: PID) -> None:
    """A remote process removed its link to ``local``."""
    proc = local._proc
    if proc is not None:
        proc.links.pop(remote, None)


class _RemoteWatcher:
    """The exit hook of a remote watcher's monitor: the DOWN goes back over the wire."""

    __slots__ = ("ref",)

    def __init__(self, ref: Ref) -> None:
        self.ref = ref

    def down(self, pid: PID, reason: Any) -> None:
        t = _transport
        if t is not None:
            t.down(self.ref, pid, reason)


def accept_monitor(target: PID, ref: Ref, watcher: PID | None) -> None:
    """A remote watcher monitors the local ``target``: its DOWN goes through the
    transport when ``target`` dies (at once, ``"noproc"``, if it is dead)."""
    del watcher  # the DOWN is routed by the ref's node
    proc = target._proc
    hook = _RemoteWatcher(ref)
    if proc is None:
        hook.down(target, "noproc")
        return
    on_exit(proc, hook, ref)


def accept_demonitor(target: PID, ref: Ref) -> None:
    """A remote watcher removed its monitor ``ref`` of the local ``target``."""
    proc = target._proc
    if proc is not None:
        proc.monitors.pop(ref, None)


def deliver_down(ref: Ref, pid: PID, reason: Any) -> None:
    """A remote process that a local watcher monitored under ``ref`` died."""
    hook = _remote_watches.pop(ref, None)
    if hook is not None:
        hook.down(pid, reason)


def self_pid() -> PID:
    """The PID of the calling process; like ``erlang:self/0``.

    Raises:
        NotInProcess: called outside any process.
    """
    proc = current_process()
    if proc is None:
        raise NotInProcess("self_pid() was called outside any process")
    return proc.pid


def processes() -> list[PID]:
    """PIDs of every live local process, oldest first; like ``erlang:processes/0``."""
    return [p.pid for p in list(table.values())]
