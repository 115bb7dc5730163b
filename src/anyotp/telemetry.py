"""Telemetry events of the runtime, like Elixir's ``:telemetry``.

Attach a handler to a named event; the runtime calls it, synchronously, in the
process that emits the event::

    from anyotp import telemetry

    def on_call(event, measurements, metadata, config):
        print(event, metadata["server"], f"{measurements['duration'] * 1e6:.0f} us")

    telemetry.attach("print-calls", telemetry.CALL_STOP, on_call)
    ...
    telemetry.detach("print-calls")

A handler must be quick and must not block: it runs inside the caller of ``call``,
the dying process, the restarting supervisor.  A handler that raises is detached and
logged (logger ``anyotp.telemetry``), and the emitter carries on.  With no handler
attached, the runtime builds no event at all (one flag test per event).

Events (measurements are floats in seconds unless said; ``system_time`` is
``time.time()``, ``monotonic_time`` is ``time.perf_counter()``):

* ``PROCESS_SPAWN = ("anyotp", "process", "spawn")``: a process finished ``init``.
  Measurements ``system_time``; metadata ``pid``, ``class``, ``name``, ``parent``.
* ``PROCESS_EXIT = ("anyotp", "process", "exit")``: a process is dead (any reason).
  Measurements ``system_time``; metadata as spawn, plus ``reason``.
* ``PROCESS_CRASH = ("anyotp", "process", "crash")``: a process raised (its crash
  report was logged).  As exit, plus ``stacktrace`` (the traceback object).
* ``SUPERVISOR_RESTART = ("anyotp", "supervisor", "restart")``: a supervisor restarts
  a child.  Measurements ``system_time``; metadata ``supervisor``, ``class`` (the
  supervisor's), ``child_id``, ``pid`` (the child that exited), ``reason``.
* ``SUPERVISOR_SHUTDOWN = ("anyotp", "supervisor", "shutdown")``: restart intensity
  exceeded.  Measurements ``system_time``, ``restarts``; metadata ``supervisor``,
  ``class``, ``max_restarts``, ``max_seconds``.
* ``CALL_START = ("anyotp", "call", "start")``: measurements ``monotonic_time``;
  metadata ``server``, ``request``.
* ``CALL_STOP = ("anyotp", "call", "stop")``: the reply arrived.  Measurements
  ``monotonic_time``, ``duration``; metadata ``server``, ``request``.
* ``CALL_EXCEPTION = ("anyotp", "call", "exception")``: the call timed out or the
  server exited.  As stop, plus ``reason`` (``"timeout"`` or the exit reason).  A
  call cancelled from outside emits neither stop nor exception.
* ``MAILBOX_SAMPLE = ("anyotp", "mailbox", "sample")``: measurements ``length``;
  metadata ``pid``, ``class``, ``name``.

``mailbox.sample`` is not emitted by the runtime on its own: call
:func:`sample_mailboxes` periodically (the observer does it every second while
something is attached), as ``telemetry_poller`` does for Elixir.
"""

from __future__ import annotations

from ._core import processes
from ._introspection import process_info
from ._telemetry import CALL_EXCEPTION as CALL_EXCEPTION
from ._telemetry import CALL_START as CALL_START
from ._telemetry import CALL_STOP as CALL_STOP
from ._telemetry import MAILBOX_SAMPLE as MAILBOX_SAMPLE
from ._telemetry import PROCESS_CRASH as PROCESS_CRASH
from ._telemetry import PROCESS_EXIT as PROCESS_EXIT
from ._telemetry import PROCESS_SPAWN as PROCESS_SPAWN
from ._telemetry import SUPERVISOR_RESTART as SUPERVISOR_RESTART
from ._telemetry import SUPERVISOR_SHUTDOWN as SUPERVISOR_SHUTDOWN
from ._telemetry import Event as Event
from ._telemetry import Handler as Handler
from ._telemetry import HandlerInfo as HandlerInfo
from ._telemetry import attach as attach
from ._telemetry import attach_many as attach_many
from ._telemetry import detach as detach
from ._telemetry import execute as execute
from ._telemetry import list_handlers as list_handlers
from ._telemetry import span as span

#: Every event the runtime emits, for ``attach_many``.
EVENTS: tuple[Event, ...] = (
    PROCESS_SPAWN,
    PROCESS_EXIT,
    PROCESS_CRASH,
    SUPERVISOR_RESTART,
    SUPERVISOR_SHUTDOWN,
    CALL_START,
    CALL_STOP,
    CALL_EXCEPTION,
    MAILBOX_SAMPLE,
)

__all__ = [
    "CALL_EXCEPTION",
    "CALL_START",
    "CALL_STOP",
    "EVENTS",
    "MAILBOX_SAMPLE",
    "PROCESS_CRASH",
    "PROCESS_EXIT",
    "PROCESS_SPAWN",
    "SUPERVISOR_RESTART",
    "SUPERVISOR_SHUTDOWN",
    "HandlerInfo",
    "attach",
    "attach_many",
    "detach",
    "execute",
    "list_handlers",
    "sample_mailboxes",
    "span",
]


def sample_mailboxes() -> int:
    """Emit ``("anyotp", "mailbox", "sample")`` once for every live local process,
    with ``{"length": n}`` and ``{"pid", "class", "name"}``; like a
    ``telemetry_poller`` measurement.  Does nothing when no handler is attached to
    that event.  A plain function (no ``await``): it reads each process from outside
    with :func:`~anyotp.process_info`.

    Returns:
        How many samples were emitted.
    """
    if not any(MAILBOX_SAMPLE in h.events for h in list_handlers(MAILBOX_SAMPLE)):
        return 0
    n = 0
    for pid in processes():
        info = process_info(pid)
        if info is None:
            continue
        meta = {"pid": pid, "class": info["class"], "name": info["registered_name"]}
        execute(MAILBOX_SAMPLE, {"length": info["message_queue_len"]}, meta)
        n += 1
    return n
