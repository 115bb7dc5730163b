"""The client side of the sync API: blocking ``call`` and ``cast`` to any server.

These speak the core's call protocol (``("$gen_call", From, request)`` into the
server's mailbox, the ``From`` doubling as the caller's monitor of the server), so a
plain thread can call an async ``anyotp.GenServer`` and async code can call a sync one.
The caller blocks on a lock-based waiter: a reply is one lock release, not a poll.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, Final

from .._core._backend import TIMEOUT, thread_waiter
from .._core._ids import PID
from .._core._process import (
    CALL_TAG,
    CAST_TAG,
    DEAD,
    From,
    Process,
    _current,
    _Down,
    _noproc_message,
    resolve,
)
from .._exceptions import GenServerError, GenServerTimeoutError

__all__ = ["call", "cast"]

_get_running_loop = asyncio._get_running_loop
#: ``Lock.acquire`` rejects longer timeouts; anything longer is "forever" in practice.
_TIMEOUT_MAX: Final = threading.TIMEOUT_MAX


def event_loop_running() -> bool:
    """True when the calling thread is running an asyncio or trio event loop."""
    if _get_running_loop() is not None:
        return True
    # A half-initialised trio (another thread is importing it) has no ``lowlevel``
    # yet, or a ``lowlevel`` without ``in_trio_run``: this thread cannot be running it.
    in_trio_run = getattr(getattr(sys.modules.get("trio"), "lowlevel", None), "in_trio_run", None)
    return in_trio_run is not None and bool(in_trio_run())


def require_no_event_loop(what: str, instead: str) -> None:
    """Raise if a blocking sync-API function is used on an event-loop thread.

    Args:
        what: the call, as the message names it: ``"Counter.stop()"``.
        instead: what to do from async code, completing "From async code, ...".

    Raises:
        GenServerError: the calling thread runs an event loop.
    """
    if event_loop_running():
        raise GenServerError(
            f"{what} blocks the calling thread, and this thread runs an event loop: "
            f"blocking it would stall every async process on that loop. From async code, "
            f"{instead}"
        )


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def label(proc: Process | None, target: Any) -> str:
    """How errors name a server: ``CounterServer <PID 0.3>`` or ``'cache' (Cache ...)``."""
    if proc is None:
        return repr(target)
    own = f"{type(proc).__name__} {proc._pid!r}"
    return own if type(target) is PID else f"{target!r} ({own})"


def clamp(timeout: float | None) -> float | None:
    """A timeout ``Lock.acquire`` accepts: negatives become 0, huge values the maximum."""
    if timeout is None:
        return None
    if timeout <= 0:
        return 0.0
    return timeout if timeout < _TIMEOUT_MAX else _TIMEOUT_MAX


def call_process(proc: Process | None, target: Any, request: Any, timeout: float | None) -> Any:
    """Do one blocking call to ``proc`` (``target`` is how the user named it)."""
    facts = {"server": target, "request": request, "timeout": timeout}
    if proc is None or proc._status is DEAD:
        raise GenServerError(
            _noproc_message(f"call(..., {short(request)})", target), reason="noproc", **facts
        )
    require_no_event_loop(
        f"call({short(request)}) to {label(proc, target)}",
        "use `await anyotp.call(pid, request, timeout=...)`, or make this blocking call "
        "in a worker thread: `await anyio.to_thread.run_sync(...)`",
    )
    me = _current.get()
    if proc is me:
        raise GenServerError(
            f"call({short(request)}) to {label(proc, target)} from inside one of its own "
            "handlers would deadlock: the server handles one message at a time and is "
            "busy running this handler. Use the state you already have, or cast() to "
            "the server to handle the request after this handler returns",
            reason="calling_self",
            **facts,
        )
    waiter = thread_waiter()
    from_ = From(None if me is None else me._pid, waiter)
    monitors = proc._monitors
    monitors[from_] = from_
    if proc._status is DEAD:  # it died between the check and the monitor
        monitors.pop(from_, None)
        raise GenServerError(
            _noproc_message(f"call(..., {short(request)})", target), reason="noproc", **facts
        )
    proc._mbox.put((CALL_TAG, from_, request))
    try:
        got = waiter.wait_blocking(clamp(timeout))
    finally:
        monitors.pop(from_, None)
    if got is TIMEOUT:
        raise GenServerTimeoutError(
            f"call({short(request)}, timeout={timeout}) to {label(proc, target)} timed out: "
            f"no reply within {timeout} s (the server is busy or blocked in a handler); "
            "its late reply will be discarded",
            reason="timeout",
            **facts,
        )
    if type(got) is _Down:
        reason = got.reason
        exc = GenServerError(
            f"call({short(request)}) to {label(proc, target)} failed: the server stopped "
            f"with exit reason {reason!r} before replying",
            reason=reason,
            **facts,
        )
        if isinstance(reason, BaseException):
            raise exc from reason
        raise exc
    return got


def call(target: PID | str, request: Any, timeout: float | None = None) -> Any:
    """Call any server, sync or async, and block until it replies.

    Like ``gen_server:call/3``, for plain threads (including the handlers of sync
    servers).  The server gets ``request`` as is: a sync server's ``handle_call(request,
    state)`` or an async ``anyotp.GenServer``'s ``handle_call(request, from_, state)``.
    The caller monitors the server for the duration of the call, so a server that
    stops before replying fails the call at once rather than at the timeout.

    Args:
        target: the server's PID (``server.pid``) or registered name.
        request: any object; a sync ``GenServer`` takes a dict, a ``TypedGenServer``
            its ``CallMsg`` type (otherwise it answers with ``GenServerError``).
        timeout: seconds to wait for the reply; ``None`` (the default, as in the
            seeds) waits forever.  A reply that arrives later is discarded.

    Returns:
        The server's reply.

    Raises:
        GenServerTimeoutError: no reply within ``timeout`` seconds (also a
            ``TimeoutError``).
        GenServerError: the server is not alive or the name is not registered; it
            stopped before replying (its exit reason chained when it is an
            exception); a sync server's ``handle_call`` raised (chained) or rejected
            the request's type; the call was made from one of the server's own
            handlers (it would deadlock); or the calling thread runs an event loop
            (use ``await anyotp.call(...)`` there).
        TypeError: ``target`` is neither a PID nor a str.
    """
    proc = target._proc if type(target) is PID else resolve(target)
    return call_process(proc, target, request, timeout)


def cast(target: PID | str, request: Any) -> None:
    """Send ``request`` to any server, sync or async, without waiting.

    Like ``gen_server:cast/2``; works from any thread, event-loop threads included
    (it never blocks).  Delivery happens before ``cast`` returns; whether the server
    handles it is not reported (a sync server logs a cast of the wrong type and drops
    it).

    Args:
        target: the server's PID or registered name.
        request: any object; see :func:`call` for what sync servers accept.

    Raises:
        GenServerError: the server is not alive or the name is not registered.
        TypeError: ``target`` is neither a PID nor a str.
    """
    proc = target._proc if type(target) is PID else resolve(target)
    if proc is None:
        raise GenServerError(_noproc_message(f"cast(..., {short(request)})", target))
    proc._mbox.put((CAST_TAG, request))
