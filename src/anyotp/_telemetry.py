"""Telemetry: named events that handlers attach to, like Elixir's ``:telemetry``.

An event is a tuple of strings, ``("anyotp", "call", "stop")``, emitted with two
dicts: *measurements* (numbers: a duration in seconds, a mailbox length) and
*metadata* (what it is about: the PID, the request, the exit reason).  A handler is
a plain function ``handler(event, measurements, metadata, config)`` attached under a
unique id; it runs synchronously, in the emitting process, so it must be quick and
must not block (append to a buffer, bump a counter).  A handler that raises is
detached and logged once, as ``:telemetry`` does; the emitter never sees the error.

This module is stdlib only and sits below ``_core`` (like ``_exceptions``): the
runtime emits its events through the small ``emit_*`` helpers at the bottom, each
call site guarded by ``if _telemetry.enabled:``, so that with nothing attached an
event costs one attribute read and builds nothing.  The public surface is
:mod:`anyotp.telemetry`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

__all__ = [
    "CALL_EXCEPTION",
    "CALL_START",
    "CALL_STOP",
    "MAILBOX_SAMPLE",
    "PROCESS_CRASH",
    "PROCESS_EXIT",
    "PROCESS_SPAWN",
    "SUPERVISOR_RESTART",
    "SUPERVISOR_SHUTDOWN",
    "Event",
    "Handler",
    "HandlerInfo",
    "attach",
    "attach_many",
    "detach",
    "enabled",
    "execute",
    "list_handlers",
    "span",
]

log = logging.getLogger("anyotp.telemetry")

Event = tuple[str, ...]
Handler = Callable[[Event, dict[str, Any], dict[str, Any], Any], None]

#: A process finished ``init`` and runs.
PROCESS_SPAWN: Event = ("anyotp", "process", "spawn")
#: A process is dead (any reason, ``"normal"`` included).
PROCESS_EXIT: Event = ("anyotp", "process", "exit")
#: A process raised: its crash report was logged.
PROCESS_CRASH: Event = ("anyotp", "process", "crash")
#: A supervisor restarts a child that exited.
SUPERVISOR_RESTART: Event = ("anyotp", "supervisor", "restart")
#: A supervisor exceeded its restart intensity and shuts down.
SUPERVISOR_SHUTDOWN: Event = ("anyotp", "supervisor", "shutdown")
#: ``call`` sent its request.
CALL_START: Event = ("anyotp", "call", "start")
#: ``call`` got its reply.
CALL_STOP: Event = ("anyotp", "call", "stop")
#: ``call`` failed: timeout, or the server exited before replying.
CALL_EXCEPTION: Event = ("anyotp", "call", "exception")
#: One process's mailbox length, from :func:`anyotp.telemetry.sample_mailboxes`.
MAILBOX_SAMPLE: Event = ("anyotp", "mailbox", "sample")

#: True while at least one handler is attached.  Emission sites test it before
#: building any dict: with nothing attached, telemetry costs one attribute read.
enabled: bool = False


class HandlerInfo(NamedTuple):
    """One attached handler, as :func:`list_handlers` returns it."""

    id: str  #: the id given to :func:`attach`
    events: tuple[Event, ...]  #: the events it is attached to
    function: Handler  #: ``function(event, measurements, metadata, config)``
    config: Any  #: passed to every call of ``function``


_lock = threading.Lock()
_by_id: dict[str, HandlerInfo] = {}
# event -> handlers, rebuilt on attach/detach (copy on write): ``execute`` reads it
# without a lock, from any thread.
_by_event: dict[Event, tuple[HandlerInfo, ...]] = {}


def _check_event(event: Any, what: str) -> Event:
    if not isinstance(event, tuple) or not event or not all(isinstance(p, str) for p in event):
        raise TypeError(
            f"{what}: an event is a non-empty tuple of str, like ('anyotp', 'call', 'stop'); "
            f"got {event!r}"
        )
    return event


def _rebuild() -> None:
    global _by_event, enabled
    table: dict[Event, list[HandlerInfo]] = {}
    for info in _by_id.values():
        for event in info.events:
            table.setdefault(event, []).append(info)
    _by_event = {event: tuple(infos) for event, infos in table.items()}
    enabled = bool(_by_id)


def attach(handler_id: str, event: Event, function: Handler, config: Any = None) -> None:
    """Attach ``function`` to one event under ``handler_id``; like ``:telemetry.attach/4``.

    Args:
        handler_id: a unique id, used to :func:`detach` it.
        event: a tuple of str, e.g. ``("anyotp", "process", "crash")``.
        function: called as ``function(event, measurements, metadata, config)`` in the
            emitting process (any thread); it must return quickly.  If it raises, it
            is detached and the error is logged.
        config: passed as the fourth argument, unchanged.

    Raises:
        ValueError: ``handler_id`` is already attached (detach it first).
        TypeError: ``event`` is not a tuple of str, or ``function`` is not callable.
    """
    attach_many(handler_id, [event], function, config)


def attach_many(
    handler_id: str, events: Iterable[Event], function: Handler, config: Any = None
) -> None:
    """Attach ``function`` to several events under one id; like ``:telemetry.attach_many/4``.

    Raises:
        ValueError: ``handler_id`` is already attached, or ``events`` is empty.
        TypeError: an event is not a tuple of str, or ``function`` is not callable.
    """
    checked = tuple(_check_event(e, f"attach({handler_id!r})") for e in events)
    if not checked:
        raise ValueError(f"attach_many({handler_id!r}): give at least one event")
    if not callable(function):
        raise TypeError(
            f"attach({handler_id!r}): the handler must be callable as "
            f"function(event, measurements, metadata, config), got {function!r}"
        )
    with _lock:
        if handler_id in _by_id:
            raise ValueError(
                f"attach({handler_id!r}): a handler with that id is already attached "
                f"(detach({handler_id!r}) first, or pick another id)"
            )
        _by_id[handler_id] = HandlerInfo(handler_id, checked, function, config)
        _rebuild()


def detach(handler_id: str) -> bool:
    """Detach the handler ``handler_id``; like ``:telemetry.detach/1``.

    Returns:
        True if it was attached, False if no handler has that id.
    """
    with _lock:
        if _by_id.pop(handler_id, None) is None:
            return False
        _rebuild()
        return True


def list_handlers(prefix: Event = ()) -> list[HandlerInfo]:
    """The attached handlers whose events start with ``prefix`` (all for ``()``);
    like ``:telemetry.list_handlers/1``."""
    n = len(prefix)
    return [info for info in list(_by_id.values()) if any(e[:n] == prefix for e in info.events)]


def execute(
    event: Event, measurements: dict[str, Any], metadata: dict[str, Any] | None = None
) -> None:
    """Emit ``event``: call every handler attached to it; like ``:telemetry.execute/3``.

    Handlers run here, synchronously, in attach order.  A handler that raises is
    detached and the error logged (``anyotp.telemetry`` logger); the others still run
    and nothing is raised to the caller.

    Args:
        event: a tuple of str.
        measurements: numbers (durations in seconds, counts, lengths).
        metadata: what the event is about (PIDs, reasons, requests).
    """
    handlers = _by_event.get(event)
    if not handlers:
        return
    meta = metadata if metadata is not None else {}
    for info in handlers:
        try:
            info.function(event, measurements, meta, info.config)
        except Exception as e:
            if detach(info.id):
                log.error(
                    "telemetry handler %r raised on event %r and was detached: %r",
                    info.id,
                    event,
                    e,
                    exc_info=e,
                )


@contextlib.contextmanager
def span(prefix: Event, metadata: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Time a block: emit ``prefix + ("start",)``, then ``prefix + ("stop",)`` or
    ``prefix + ("exception",)``; like ``:telemetry.span/3``.

    ``start`` carries ``{"monotonic_time", "system_time"}``; ``stop`` and
    ``exception`` carry ``{"monotonic_time", "duration"}`` (seconds), and
    ``exception``'s metadata adds ``kind`` (the exception type's name), ``reason``
    (the exception) and ``stacktrace`` (its traceback).  The exception is re-raised.
    The block gets the metadata dict and may add keys to it for ``stop``.

    Raises:
        TypeError: ``prefix`` is not a tuple of str.
    """
    _check_event(prefix, "span()")
    meta: dict[str, Any] = dict(metadata or {})
    t0 = time.perf_counter()
    if enabled:
        execute((*prefix, "start"), {"monotonic_time": t0, "system_time": time.time()}, meta)
    try:
        yield meta
    except BaseException as e:
        if enabled:
            t1 = time.perf_counter()
            execute(
                (*prefix, "exception"),
                {"monotonic_time": t1, "duration": t1 - t0},
                {**meta, "kind": type(e).__name__, "reason": e, "stacktrace": e.__traceback__},
            )
        raise
    if enabled:
        t1 = time.perf_counter()
        execute((*prefix, "stop"), {"monotonic_time": t1, "duration": t1 - t0}, meta)


# ---------------------------------------------------------------------------------
# What the runtime emits.  Each helper is called behind ``if _telemetry.enabled:`` at
# one line of the core or a behaviour; ``proc`` is the core's process control block
# (typed Any: this module sits below the core and cannot import it).


def _about(proc: Any) -> dict[str, Any]:
    return {
        "pid": proc.pid,
        "class": type(proc.body).__name__,
        "name": proc.name,
        "parent": proc.parent,
    }


def emit_process_spawn(proc: Any) -> None:
    """``("anyotp", "process", "spawn")``: ``proc`` finished ``init``."""
    execute(PROCESS_SPAWN, {"system_time": time.time()}, _about(proc))


def emit_process_exit(proc: Any, reason: Any) -> None:
    """``("anyotp", "process", "exit")``: ``proc`` is dead with ``reason``."""
    execute(PROCESS_EXIT, {"system_time": time.time()}, {**_about(proc), "reason": reason})


def emit_process_crash(proc: Any, reason: Any) -> None:
    """``("anyotp", "process", "crash")``: ``proc`` raised ``reason``."""
    meta = {**_about(proc), "reason": reason, "stacktrace": getattr(reason, "__traceback__", None)}
    execute(PROCESS_CRASH, {"system_time": time.time()}, meta)


def emit_call_start(server: Any, request: Any) -> float:
    """``("anyotp", "call", "start")``; returns the start time for :func:`emit_call_stop`."""
    t0 = time.perf_counter()
    execute(CALL_START, {"monotonic_time": t0}, {"server": server, "request": request})
    return t0


def emit_call_stop(t0: float, server: Any, request: Any, got: Any, failed: bool) -> None:
    """``("anyotp", "call", "stop")`` or, when ``failed``, ``("anyotp", "call",
    "exception")`` with ``reason`` (the server's exit reason, or ``"timeout"``)."""
    t1 = time.perf_counter()
    measurements = {"monotonic_time": t1, "duration": t1 - t0}
    meta = {"server": server, "request": request}
    if failed:
        meta["reason"] = getattr(got, "reason", "timeout")
        execute(CALL_EXCEPTION, measurements, meta)
    else:
        execute(CALL_STOP, measurements, meta)


def emit_supervisor_restart(sup: Any, child_id: Any, pid: Any, reason: Any) -> None:
    """``("anyotp", "supervisor", "restart")``: ``sup`` restarts child ``child_id``."""
    meta = {
        "supervisor": sup.pid,
        "class": type(sup).__name__,
        "child_id": child_id,
        "pid": pid,
        "reason": reason,
    }
    execute(SUPERVISOR_RESTART, {"system_time": time.time()}, meta)


def emit_supervisor_shutdown(sup: Any, restarts: int) -> None:
    """``("anyotp", "supervisor", "shutdown")``: ``sup`` exceeded its restart intensity."""
    meta = {
        "supervisor": sup.pid,
        "class": type(sup).__name__,
        "max_restarts": sup.max_restarts,
        "max_seconds": sup.max_seconds,
    }
    execute(SUPERVISOR_SHUTDOWN, {"system_time": time.time(), "restarts": restarts}, meta)
