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
from collections.abc import Callable
from typing import Any, Final

from .._core import (
    CALL_TAG,
    PID,
    Proc,
    Target,
    call_blocking,
    cast_nowait,
    check_timeout,
    noproc_message,
    route,
)
from .._exceptions import (
    CallError,
    CallExit,
    CallNoProc,
    CallTimeout,
    GenServerError,
    GenServerExit,
    GenServerNoProc,
    GenServerTimeoutError,
    NoProcess,
)

__all__ = ["call", "cast"]

_get_running_loop = asyncio._get_running_loop
#: ``Lock.acquire`` rejects longer timeouts; anything longer is "forever" in practice.
_TIMEOUT_MAX: Final = threading.TIMEOUT_MAX


def event_loop_running() -> bool:
    """True when the calling thread is running an asyncio or trio event loop."""
    if _get_running_loop() is not None:
        return True
    # Another thread may be importing trio right now: a half-initialised module has
    # no `lowlevel` yet, and then no trio run can be active in this thread.
    lowlevel = getattr(sys.modules.get("trio"), "lowlevel", None)
    in_trio_run = getattr(lowlevel, "in_trio_run", None)
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


def label(target: Any, name: str | None = None) -> str:
    """How errors name a server: ``Counter <PID 0.3>`` or ``'cache' (Cache <PID 0.3>)``."""
    if name is None:
        try:
            dest = route(target, "call()")
        except (NoProcess, TypeError):
            dest = None
        if type(dest) is not Proc:
            return repr(target)
        name = type(dest.body).__name__
        pid = dest.pid
    else:
        pid = target
    own = f"{name} {pid!r}"
    return own if type(target) is PID else f"{target!r} ({own})"


def clamp(timeout: float | None, what: Callable[[], str] = lambda: "call()") -> float | None:
    """A timeout ``Lock.acquire`` accepts: negatives become 0 (as ``Thread.join`` takes
    them), huge values the maximum.  ``what()`` names the call in the error, made only
    for a bad timeout.

    Raises:
        TypeError: ``timeout`` is not a number (a str, a bool).
        ValueError: it is NaN.
    """
    if timeout is None:
        return None
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout != timeout:
        check_timeout(timeout, what())  # raises
    if timeout <= 0:
        return 0.0
    return timeout if timeout < _TIMEOUT_MAX else _TIMEOUT_MAX


def blocking_call(target: Target, request: Any, timeout: float | None, name: str | None) -> Any:
    """One blocking call (the core's ``call``, waiting on a lock), with the sync
    API's errors; ``name`` is the server's class name when the caller knows it."""
    require_no_event_loop(
        f"call({short(request)}) to {label(target, name)}",
        "use `await anyotp.call(pid, request, timeout=...)`, or make this blocking call "
        "in a worker thread: `await anyio.to_thread.run_sync(...)`",
    )
    facts: dict[str, Any] = {"server": target, "request": request, "timeout": timeout}
    try:
        wait = clamp(timeout, lambda: f"call({short(request)})")
        return call_blocking(target, CALL_TAG, request, wait)
    except CallTimeout:
        raise GenServerTimeoutError(
            f"call({short(request)}, timeout={timeout}) to {label(target, name)} timed out: "
            f"no reply within {timeout} s (the server is busy or blocked in a handler); "
            "its late reply will be discarded",
            reason="timeout",
            **facts,
        ) from None
    except CallNoProc:
        raise GenServerNoProc(
            noproc_message(f"call(..., {short(request)})", target), reason="noproc", **facts
        ) from None
    except CallExit as e:
        reason = e.reason
        exc = GenServerExit(
            f"call({short(request)}) to {label(target, name)} failed: the server stopped "
            f"with exit reason {reason!r} before replying",
            reason=reason,
            **facts,
        )
        if isinstance(reason, BaseException):
            raise exc from reason
        raise exc from None
    except GenServerError:
        raise
    except CallError as e:
        if e.reason == "calling_self":
            raise GenServerError(
                f"call({short(request)}) to {label(target, name)} from inside one of its own "
                "handlers would deadlock: the server handles one message at a time and is "
                "busy running this handler. Use the state you already have, or cast() to "
                "the server to handle the request after this handler returns",
                reason="calling_self",
                **facts,
            ) from None
        raise


def call(target: Target, request: Any, timeout: float | None = None) -> Any:
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
            ``TimeoutError`` and a ``CallTimeout``).
        GenServerNoProc: the server is not alive or the name is not registered (also
            a ``CallNoProc``, a ``LookupError``).
        GenServerExit: it stopped before replying (also a ``CallExit``; its exit
            reason chained when it is an exception).
        GenServerError: a sync server's ``handle_call`` raised (chained) or rejected
            the request's type; the call was made from one of the server's own
            handlers (it would deadlock); or the calling thread runs an event loop
            (use ``await anyotp.call(...)`` there).
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    return blocking_call(target, request, timeout, None)


def cast(target: Target, request: Any) -> None:
    """Send ``request`` to any server, sync or async, without waiting.

    Like ``gen_server:cast/2``; works from any thread, event-loop threads included
    (it never blocks).  Delivery happens before ``cast`` returns; whether the server
    handles it is not reported (a sync server logs a cast of the wrong type and drops
    it), and a cast to a server that is not alive is dropped, as in OTP.

    Args:
        target: the server's PID, registered name or via-name.
        request: any object; see :func:`call` for what sync servers accept.

    Raises:
        GenServerNoProc: ``target`` is a name nobody registered.
        TypeError: ``target`` is not a PID, a str or a via-name.
    """
    try:
        cast_nowait(target, request)
    except NoProcess as e:
        raise GenServerNoProc(
            str(e).replace("cast()", f"cast(..., {short(request)})", 1),
            server=target,
            request=request,
            reason="noproc",
        ) from None
