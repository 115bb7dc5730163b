"""Timers: deliver a message later, once or periodically.

``send_after(dest, msg, seconds)`` sends ``msg`` to ``dest`` after ``seconds``, like
``erlang:send_after/3`` / ``Process.send_after/3``; ``send_interval`` repeats it, like
``timer:send_interval/3``.  A timer belongs to the process that created it and dies
with it.  ``cancel_timer(ref)`` returns the seconds that were left, or None if the
timer already fired (or was cancelled): once it returned a number, the message will
never arrive.  ``read_timer(ref)`` tells the seconds left without cancelling.  If
``dest`` is dead when the timer fires, the message is dropped.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Any, Final

import anyio

from ._core import (
    DEAD,
    Proc,
    Target,
    child_tasks,
    lookup,
    on_exit,
    require_current,
    seconds,
    send_nowait,
)
from ._exceptions import NoProcess

log = logging.getLogger("anyotp.timer")

__all__ = ["TimerRef", "cancel_timer", "read_timer", "send_after", "send_interval"]


class TimerRef:
    """A running timer; pass it to :func:`cancel_timer` or :func:`read_timer`."""

    __slots__ = ("_deadline", "_done", "_interval", "_scope", "_thread_clock")

    def __init__(self, deadline: float, interval: float | None, thread: bool = False) -> None:
        self._deadline = deadline
        self._interval = interval
        self._done = False
        # a timer of a thread process (the sync API) runs on the timer thread, on the
        # monotonic clock; others are tasks of their process, on the loop's clock
        self._thread_clock = thread
        self._scope = None if thread else anyio.CancelScope()

    @property
    def cancelled(self) -> bool:
        """True once the timer fired for good or was cancelled."""
        return self._done

    def __repr__(self) -> str:
        state = "done" if self._done else f"due at {self._deadline:.3f}"
        return f"<TimerRef {state}>"


async def _run_timer(ref: TimerRef, dest: Target, message: Any) -> None:
    assert ref._scope is not None
    try:
        with ref._scope:
            await _timer_loop(ref, dest, message)
    finally:  # fired, cancelled, or died with its owner: never fires again
        ref._done = True


def _deliver(dest: Target, message: Any) -> None:
    try:
        send_nowait(dest, message)
    except NoProcess:  # a name nobody holds any more: dropped, like a dead PID
        pass


def _deliver_from_thread(dest: Target, message: Any) -> None:
    """:func:`_deliver` on the timer thread, which nothing may end: it fires the
    timers of every thread process."""
    try:
        _deliver(dest, message)
    except Exception as e:  # a registry that raised: this message is lost, no other
        log.error("timer to %r: delivering %r raised %r", dest, message, e, exc_info=e)


async def _timer_loop(ref: TimerRef, dest: Target, message: Any) -> None:
    while True:
        await anyio.sleep_until(ref._deadline)
        if ref.cancelled:  # cancelled while the sleep was completing: never send
            return
        _deliver(dest, message)
        if ref._interval is None:
            return
        ref._deadline += ref._interval


#: the longest the timer thread sleeps at once, in seconds
_MAX_WAIT: Final = 3600.0
#: how long the timer thread lets go of its lock between ticks it is behind on
_CATCH_UP_GAP: Final = 0.0001


class _TimerThread:
    """Timers of thread processes: one daemon thread, a heap, a condition variable.

    Firing and :func:`cancel_timer` take the same lock, so a cancel that returns a
    number really prevents the message.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, TimerRef, Target, Any]] = []
        self.seq = itertools.count()
        self.thread: threading.Thread | None = None

    def add(self, ref: TimerRef, dest: Target, message: Any) -> None:
        with self.cond:
            heapq.heappush(self.heap, (ref._deadline, next(self.seq), ref, dest, message))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="anyotp timers", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self) -> None:
        cond = self.cond
        heap = self.heap
        with cond:
            while True:
                while heap and heap[0][2]._done:
                    heapq.heappop(heap)
                if not heap:
                    cond.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    # at most _MAX_WAIT at a time: a timer of math.inf seconds must not
                    # raise here (past what the platform's clock holds) and end the
                    # thread that fires every thread process's timers
                    cond.wait(wait if wait < _MAX_WAIT else _MAX_WAIT)
                    continue
                _, _, ref, dest, message = heapq.heappop(heap)
                _deliver_from_thread(dest, message)  # never blocks
                if ref._interval is None:
                    ref._done = True
                else:
                    ref._deadline += ref._interval
                    now = time.monotonic()
                    behind = ref._deadline <= now
                    if behind:
                        # an interval shorter than a delivery: its next tick comes
                        # after the timers due meanwhile, or they would starve
                        ref._deadline = now
                    heapq.heappush(heap, (ref._deadline, next(self.seq), ref, dest, message))
                    if behind:
                        # and the lock is let go a moment between such ticks, or
                        # cancel_timer and every new timer of the thread processes
                        # would wait for it forever
                        cond.wait(_CATCH_UP_GAP)


_thread_timers = _TimerThread()


class _CancelTimers:
    """Exit hook: a thread process's timers die with it."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        self.refs: list[TimerRef] = []

    def down(self, pid: Any, reason: Any) -> None:
        for ref in self.refs:
            cancel_timer(ref)


def _start(owner: Proc, dest: Target, message: Any, first: float, every: float | None) -> TimerRef:
    for value, what in ((first, "seconds"), (every, "interval")):
        if value is not None and (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or value != value  # NaN
            or value < 0
        ):
            raise ValueError(f"timer {what} must be a number of seconds >= 0, got {value!r}")
    if every is not None and every <= 0:
        raise ValueError(f"send_interval() needs an interval > 0 seconds, got {every!r}")
    try:  # a destination of the wrong type fails here, not when the timer fires
        lookup(dest, "send_after()" if every is None else "send_interval()")
    except NoProcess:  # a name not registered (yet): looked up again when it fires
        pass
    first = seconds(first)  # an int too large for a float: math.inf, never fires
    if every is not None:
        every = seconds(every)
    if owner.loop.kind == "thread":
        ref = TimerRef(time.monotonic() + first, every, thread=True)
        hook = owner.monitors.get(_CancelTimers)
        if not isinstance(hook, _CancelTimers):
            hook = _CancelTimers()
            on_exit(owner, hook, _CancelTimers)
        hook.refs = [r for r in hook.refs if not r._done]
        hook.refs.append(ref)
        if owner.status is not DEAD:
            _thread_timers.add(ref, dest, message)
        return ref
    ref = TimerRef(anyio.current_time() + first, every)
    child_tasks(owner).start_soon(_run_timer, ref, dest, message)
    return ref


def send_after(dest: Target, message: Any, seconds: float) -> TimerRef:
    """Send ``message`` to ``dest`` after ``seconds``; like ``erlang:send_after/3``.

    Args:
        dest: a PID, registered name or via-name (looked up when the timer fires).
        message: the message.
        seconds: the delay (>= 0).

    Raises:
        NotInProcess: called outside a process (a timer belongs to its process).
        ValueError: ``seconds`` is negative or not a number.
    """
    owner = require_current("send_after()")
    return _start(owner, dest, message, seconds, None)


def send_interval(dest: Target, message: Any, seconds: float) -> TimerRef:
    """Send ``message`` to ``dest`` every ``seconds``; like ``timer:send_interval/3``.

    Ticks are scheduled from the start time (no drift); stop with :func:`cancel_timer`.

    Raises:
        NotInProcess: called outside a process.
        ValueError: ``seconds`` is not > 0.
    """
    owner = require_current("send_interval()")
    return _start(owner, dest, message, seconds, seconds)


def cancel_timer(ref: TimerRef) -> float | None:
    """Cancel a timer; like ``erlang:cancel_timer/1``.

    Returns:
        The seconds that were left before it would have fired, or None if it had
        already fired (a one-shot timer) or was already cancelled.  When a number is
        returned, the timer's message is guaranteed never to arrive.
    """
    if ref._thread_clock:
        with _thread_timers.cond:
            if ref._done:
                return None
            ref._done = True
            return max(0.0, ref._deadline - time.monotonic())
    if ref._done:
        return None
    ref._done = True
    assert ref._scope is not None
    ref._scope.cancel()
    return max(0.0, ref._deadline - anyio.current_time())


def read_timer(ref: TimerRef) -> float | None:
    """The seconds left before a timer fires, without cancelling it; like
    ``erlang:read_timer/1``.

    Call it on the event loop the timer runs on (any task there, not only the
    owner), as :func:`cancel_timer`; the timers of a sync server can be read from
    any thread.

    Args:
        ref: a :class:`TimerRef` from :func:`send_after` or :func:`send_interval`.

    Returns:
        The seconds left (a float ``>= 0``; ``0.0`` when the timer is due and about to
        fire), for an interval timer the seconds to its next tick; or None if the
        timer is over: a one-shot timer that fired, a cancelled timer, or one that
        died with its owner.

    Raises:
        TypeError: ``ref`` is not a :class:`TimerRef`.
    """
    if type(ref) is not TimerRef:
        raise TypeError(
            f"read_timer() takes the TimerRef that send_after() or send_interval() "
            f"returned, got {type(ref).__name__} {ref!r}"
        )
    if ref._thread_clock:
        with _thread_timers.cond:
            if ref._done:
                return None
            return max(0.0, ref._deadline - time.monotonic())
    if ref._done:
        return None
    return max(0.0, ref._deadline - anyio.current_time())
