"""The generic server protocol, like OTP's ``gen``: one ``call``, ``From``, one decoder.

``call`` is built the OTP way: monitor the server, send ``(tag, from_, request)``,
wait for the reply or the DOWN, demonitor.  To a remote server the monitor and the
request go as one signal (``Transport.call``).  :class:`From` is data -- the caller's PID
and a :class:`Ref` -- so a reply can come from any process, on any node; the local
fast path keeps the caller's waiter behind it.  Every behaviour decodes its mailbox
with :func:`decode` (calls, casts, system requests, the parent's EXIT, info).
"""

from __future__ import annotations

import threading
from asyncio import Future
from asyncio import _get_running_loop as _running_loop
from collections.abc import Coroutine
from typing import Any, Final

from .. import _telemetry
from .._exceptions import CallError, CallExit, CallNoProc, CallTimeout, NoProcess, NotInProcess
from . import _backend
from ._backend import (
    LAZY_TIMEOUT,
    TIMEOUT,
    Loop,
    Waiter,
    check_timeout,
    current_loop,
    seconds,
    thread_waiter,
)
from ._ids import LOCAL, PID, Ref
from ._process import DEAD, Proc, current_process
from ._routing import (
    CAST_TAG,
    Target,
    _remote_demonitor,
    get_transport,
    lookup,
    noproc_message,
    watch_remote,
)

_get_ident = threading.get_ident
_Future = Future

__all__ = [
    "CALL",
    "CALL_TAG",
    "CAST",
    "CAST_TAG",
    "INFO",
    "PARENT_EXIT",
    "SYSTEM",
    "SYSTEM_TAG",
    "CallRaised",
    "From",
    "call",
    "call_blocking",
    "decode",
    "deliver_reply",
    "gen_call",
    "reply",
]

#: Head of a call message: ``("$gen_call", from_, request)``, like OTP's ``$gen_call``.
CALL_TAG: Final = "$gen_call"
#: Head of a system message: ``("$system", from_, request)``, like OTP's ``system``.
SYSTEM_TAG: Final = "$system"

#: What :func:`decode` says a message is.
CALL: Final = 0  #: ``(CALL_TAG, from_, request)``
CAST: Final = 1  #: ``(CAST_TAG, request)``
SYSTEM: Final = 2  #: ``(SYSTEM_TAG, from_, request)``
PARENT_EXIT: Final = 3  #: ``("EXIT", parent, reason)``: a trapping server stops
INFO: Final = 4  #: anything else


def decode(message: Any, parent: PID | None, trap_exit: bool) -> int:
    """What a message in a server's mailbox is: :data:`CALL`, :data:`CAST`,
    :data:`SYSTEM`, :data:`PARENT_EXIT` or :data:`INFO`.

    The one decoder of every behaviour.  ``PARENT_EXIT`` is an ``EXIT`` from the
    process that started this one while it traps exits: OTP's servers then stop with
    the same reason.  An ``EXIT`` with no sender (from outside any process) is info.
    """
    if type(message) is tuple:
        n = len(message)
        if n == 3:
            head = message[0]
            if head == CALL_TAG:
                return CALL
            if head == SYSTEM_TAG:
                return SYSTEM
            if (
                head == "EXIT"
                and trap_exit
                and parent is not None
                and message[1] is not None
                and message[1] == parent
            ):
                return PARENT_EXIT
        elif n == 2 and message[0] == CAST_TAG:
            return CAST
    return INFO


class _Down:
    """What a call waiter receives when the server exits before replying."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


class CallRaised:
    """A reply that makes the caller's ``call`` raise ``exc`` (``From.fail``)."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_new_from = object.__new__

#: live calls whose reply may come through the transport: ref -> From
_aliases: dict[Ref, From] = {}


class From:
    """Who is waiting for a reply: the ``from_`` argument of ``handle_call``.

    Pass it to :func:`~anyotp.reply` (or return ``(reply, state)``) to answer.  It is
    data -- the caller's PID and a reference -- and can be sent to another process
    (or node) that answers instead.  Replying twice, or after the caller gave up
    (timeout), is silently ignored: a late reply never reaches a mailbox.

    Attributes:
        pid: the calling process, or None when the caller is not a process.
    """

    __slots__ = ("_ref", "_tid", "_waiter", "pid")

    # ``_waiter`` is the caller's waiter, or on asyncio the caller's bare Future: a
    # call there makes no waiter object, and a reply sets the future itself (bench:
    # call_latency, fan_in).  ``_tid`` is the caller's thread: a reply from it sets
    # the future directly (asking for the running loop instead costs a getpid()
    # system call; bench: call_latency, fan_in).

    def __init__(
        self, pid: PID | None, waiter: Waiter | Future[Any] | None, ref: Ref | None = None
    ) -> None:
        self.pid: PID | None = pid
        self._waiter = waiter
        self._tid = _get_ident()
        # made on first need (a remote call, or the From crossing nodes): most calls
        # are local and never need it (bench: call_latency)
        self._ref = ref

    @property
    def ref(self) -> Ref:
        """The call's reference (tags the reply, like the ``Tag`` of OTP's ``From``)."""
        ref = self._ref
        if ref is None:
            ref = self._ref = Ref()
        return ref

    def reply(self, value: Any) -> None:
        """Send ``value`` to the caller (any thread, any node); like ``gen_server:reply/2``."""
        w = self._waiter
        if w is not None:
            if type(w) is _Future:  # an asyncio caller: its future (bench: call_latency)
                if _get_ident() == self._tid:
                    if not w.done():
                        try:
                            w.set_result(value)
                        except RuntimeError:
                            if not w.get_loop().is_closed():
                                raise
                            # its loop is closed: nobody waits
                else:
                    _set_future_threadsafe(w, value)
                return
            w.set(value)  # type: ignore[union-attr]
            return
        ref = self._ref
        if ref is None:
            return
        if ref._node is LOCAL:
            deliver_reply(ref, value)
            return
        t = get_transport()
        if t is not None:
            t.reply(ref, value)

    def fail(self, exc: BaseException) -> None:
        """Make the caller's ``call`` raise ``exc`` instead of returning a reply."""
        self.reply(CallRaised(exc))

    def down(self, pid: PID, reason: Any) -> None:
        """Exit hook: the server exited before replying; the call fails at once."""
        if self._waiter is not None:
            self.reply(_Down(reason))

    def __reduce__(self) -> tuple[Any, ...]:
        ref = self.ref
        if self._waiter is not None:
            _aliases[ref] = self  # the reply may come back through the transport
        return (From, (self.pid, None, ref))

    def __repr__(self) -> str:
        return f"<From {self.pid!r}>"


def _set_future_threadsafe(fut: Future[Any], value: Any) -> None:
    """Set an asyncio caller's future from another thread (a closed loop drops it)."""
    try:
        fut.get_loop().call_soon_threadsafe(_set_pending, fut, value)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


def _set_pending(fut: Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def deliver_reply(ref: Ref, value: Any) -> None:
    """The reply to a local caller's call ``ref`` arrived (from the transport)."""
    f = _aliases.get(ref)
    if f is not None:
        f.reply(value)


def reply(from_: From, value: Any) -> None:
    """Answer a call whose ``handle_call`` returned ``NoReply``; like ``gen_server:reply/2``.

    Works from any process, thread or node.  A reply to a caller that already gave
    up (timed out) or was already answered is discarded.
    """
    from_.reply(value)


# ------------------------------------------------------------------------ call


def _call_timeout(timeout: Any, target: Any, request: Any) -> float | None:
    """A call's timeout that is not a float >= 0: an int made a float, anything else
    checked (the message, which formats the target and the request, only then)."""
    if type(timeout) is int and timeout >= 0:
        return seconds(timeout)
    return check_timeout(timeout, f"call({target!r}, {request!r})")


def _calling_self(target: Any, request: Any, timeout: float | None) -> CallError:
    return CallError(
        f"call({target!r}, {request!r}) from the process itself would deadlock: "
        "a process cannot call itself",
        target,
        request,
        timeout,
        "calling_self",
    )


def _noproc(target: Any, request: Any, timeout: float | None) -> CallNoProc:
    return CallNoProc(
        noproc_message(f"call(..., {request!r})", target), target, request, timeout, "noproc"
    )


def _begin(
    target: Target,
    tag: str,
    request: Any,
    timeout: float | None,
    waiter: Waiter | Future[Any],
    me: Proc | None,
) -> tuple[From, Proc | None, PID]:
    """Monitor the server and send it the request; the first half of every call.

    Returns the ``From``, the local server (None for a remote one) and its PID.
    """
    if type(target) is PID:
        pid = target
    else:
        try:
            pid = lookup(target, f"call(..., {request!r})")
        except NoProcess as e:  # keep the cause: an unknown name, a key, a dead registry
            raise CallNoProc(str(e), target, request, timeout, "noproc") from None
    proc = pid._proc
    from_ = From(None if me is None else me.pid, waiter)
    if proc is None:
        if pid._node is LOCAL:
            raise _noproc(target, request, timeout)
        ref = from_.ref
        _aliases[ref] = from_
        if not watch_remote(ref, from_, from_.pid, pid, (tag, from_, request)):
            del _aliases[ref]
            raise _noproc(target, request, timeout)
        return from_, None, pid
    if proc is me:
        raise _calling_self(target, request, timeout)
    monitors = proc.monitors
    monitors[from_] = from_
    if proc.status is DEAD:  # died between lookup and monitor
        monitors.pop(from_, None)
        raise _noproc(target, request, timeout)
    # Mailbox.put, inlined (bench: call_latency, fan_in): append, then wake.
    mbox = proc.mbox
    mbox.queue.append((tag, from_, request))
    if mbox.waiter is not None:
        mbox.notify(proc.loop.tid)
    return from_, proc, pid


def _end(from_: From, proc: Proc | None, pid: PID) -> None:
    """Demonitor: the second half of every call."""
    ref = from_._ref
    if ref is not None:  # a remote call, or a From that was pickled: reachable by ref
        _aliases.pop(ref, None)
    if proc is not None:
        proc.monitors.pop(from_, None)
        return
    assert ref is not None
    _remote_demonitor(ref, pid)


#: reply types that are failures (checked in one set lookup on the call's way back)
_FAILURES: Final = frozenset({_Down, CallRaised})


def _result(got: Any, target: Any, request: Any, timeout: float | None) -> Any:
    """The second half of every call: the reply, or the exception a failure makes."""
    if type(got) is CallRaised:
        raise got.exc
    if type(got) is _Down:
        reason = got.reason
        if type(reason) is str and reason == "noproc":
            raise _noproc(target, request, timeout)
        exc = CallExit(
            f"call({target!r}, {request!r}) failed: the server exited with reason "
            f"{reason!r} before replying",
            target,
            request,
            timeout,
            reason,
        )
        if isinstance(reason, BaseException):
            raise exc from reason
        raise exc
    if got is TIMEOUT:
        raise CallTimeout(
            f"call({target!r}, {request!r}, timeout={timeout}) timed out: no reply in "
            f"{timeout} s (a late reply will be discarded)",
            target,
            request,
            timeout,
            "timeout",
        )
    return got


def call(target: Target, request: Any, timeout: float | None = 5.0) -> Coroutine[Any, Any, Any]:
    """Send ``request`` to a GenServer and wait for its reply; like ``gen_server:call/3``.

    The caller monitors the server for the duration of the call: if the server is not
    alive, or exits before replying, the call fails at once rather than at the
    timeout.  A reply that arrives after the timeout is discarded.

    Args:
        target: a PID, a registered name or a via-name.
        request: passed to the server's ``handle_call(request, from_, state)``.
        timeout: seconds to wait for the reply; ``None`` waits forever.

    Returns:
        The server's reply.

    Raises:
        CallNoProc: the server is dead or the name unknown (a ``LookupError``).
        CallTimeout: no reply within ``timeout`` seconds (a ``TimeoutError``).
        CallExit: the server exited before replying; ``.reason`` says why
            (``"noconnection"`` when its node was lost).
        CallError: a process called itself (``reason="calling_self"``).
        NotInProcess: no event loop runs in this thread (use ``anyotp.sync.call``).
    """
    # A plain function returning gen_call's coroutine: one coroutine level, not two,
    # to suspend and resume through on every call (bench: call_latency, fan_in).
    return gen_call(target, CALL_TAG, request, timeout)


async def gen_call(target: Target, tag: str, request: Any, timeout: float | None) -> Any:
    """:func:`call` with another message tag (``SYSTEM_TAG`` for system requests)."""
    # a float >= 0 passes as it is, an int >= 0 is made a float; only a bad one pays
    # for the message, which formats the target and the request (bench: call_latency)
    if timeout is not None and not (type(timeout) is float and timeout >= 0):
        timeout = _call_timeout(timeout, target, request)
    me = current_process()
    if me is not None and me.loop.kind != "thread" and me.loop.tid == _get_ident():
        loop: Loop | None = me.loop
    else:
        # A plain task, a thread process, or a process's code run on another loop
        # in another thread (asyncio.run in a worker thread: the context, and so
        # current_process, came along): the loop running here.
        # current_loop's cache, inlined for a plain asyncio task (bench: call_latency)
        last = _backend._last_aio
        if last[0] is _running_loop() is not None and last[1].tid == _get_ident():
            loop = last[1]
        else:
            loop = current_loop()
    if loop is None:
        raise NotInProcess(
            "call() needs a running event loop; from plain threads use anyotp.sync.call()"
        )
    aio = loop.aio
    # on asyncio the caller waits on a bare Future (see From), of the running loop
    # (the caller's).  Without loop=: its dict costs ~600 instructions, more than
    # the getpid() system call the Future then makes to find the running loop
    # (bench: call_latency, fan_in); waiters, made more often, keep loop=.
    w: Any = loop.new_waiter() if aio is None else _Future()
    t0 = _telemetry.emit_call_start(target, request) if _telemetry.enabled else 0.0
    proc = target._proc if isinstance(target, PID) else None
    if proc is not None and proc is not me:
        # _begin, inlined for a local PID (bench: call_latency, fan_in): monitor,
        # then the request into the mailbox (Mailbox.put inlined: append, wake)
        pid = proc.pid
        # From(...) without its __init__ frame (bench: call_latency, fan_in)
        from_ = _new_from(From)
        from_.pid = None if me is None else me.pid
        from_._waiter = w
        from_._tid = loop.tid
        from_._ref = None
        monitors = proc.monitors
        monitors[from_] = from_
        if proc.status is DEAD:  # died meanwhile (a thread process, on its thread)
            monitors.pop(from_, None)
            raise _noproc(target, request, timeout)
        mbox = proc.mbox
        mbox.queue.append((tag, from_, request))
        if mbox.waiter is not None:
            mbox.notify(proc.loop.tid)
    else:
        from_, proc, pid = _begin(target, tag, request, timeout, w, me)
    try:
        if aio is None:
            got = await (w if timeout is None else w.wait(timeout))
        elif timeout is None:
            got = await w
        elif timeout >= LAZY_TIMEOUT:
            # the timeout wheel, inlined (one coroutine level fewer to suspend and
            # resume through), armed lazily: a list append, no clock read, no dict
            # insert and delete (bench: call_latency, fan_in)
            wheel = loop.wheel
            assert wheel is not None
            wheel.fresh[w] = timeout
            if not wheel.sweeping:
                wheel.sweep_soon()
            try:
                got = await w
            finally:
                # _AioTimeouts.forget, inlined for a call that ended before a sweep
                if wheel.fresh.pop(w, None) is None and wheel.moved:
                    wheel.forget(w)
        elif timeout > 0:
            wheel = loop.wheel
            assert wheel is not None
            tick = wheel.add(w, timeout)
            try:
                got = await w
            finally:
                wheel.remove(w, tick)
        else:
            got = w.result() if w.done() else TIMEOUT
    finally:
        if proc is not None and from_._ref is None:  # _end, inlined for the common
            proc.monitors.pop(from_, None)  # case (bench: call_latency)
        else:
            _end(from_, proc, pid)
    if t0:
        failed = type(got) is _Down or got is TIMEOUT or type(got) is CallRaised
        _telemetry.emit_call_stop(t0, target, request, got, failed)
    if got is TIMEOUT or type(got) in _FAILURES:
        return _result(got, target, request, timeout)
    return got


def call_blocking(target: Target, tag: str, request: Any, timeout: float | None) -> Any:
    """:func:`call` for a plain thread: block it until the reply (the sync API).

    Raises:
        As :func:`call`.
    """
    if timeout is not None and not (type(timeout) is float and timeout >= 0):
        timeout = _call_timeout(timeout, target, request)
    w = thread_waiter()
    from_, proc, pid = _begin(target, tag, request, timeout, w, current_process())
    try:
        got = w.wait_blocking(timeout)
    finally:
        _end(from_, proc, pid)
    return _result(got, target, request, timeout)
