"""The one place that knows which event loop is running.

Everything above this module waits through a *waiter*: a one-shot slot that some
other task (or thread) fills with a value or an exception, and that one task awaits
with an optional timeout.  anyio's ``Event`` would do, but a mailbox and a ``call``
wait once per message, so this is the hot path: on asyncio a waiter is a bare
``Future`` and a ``call_later`` handle; on trio it parks the task with
``wait_task_rescheduled``.  Both are woken from any thread: a wake from a foreign
thread is handed to the loop with ``call_soon_threadsafe`` / ``run_sync_soon``.

Cancellation is never swallowed: cancelling the awaiting task (an anyio cancel scope,
a trio nursery) raises the backend's cancellation exception out of ``wait``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = [
    "LAZY_TIMEOUT",
    "TIMEOUT",
    "Loop",
    "Waiter",
    "check_timeout",
    "current_loop",
    "new_thread_loop",
    "seconds",
    "thread_waiter",
    "wake_waiter",
]

_get_ident = threading.get_ident
_Future = asyncio.Future
_get_running_loop = asyncio._get_running_loop


class _Timeout:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMEOUT"


#: What ``Waiter.wait`` returns when its timeout expired before a value arrived.
TIMEOUT: Final[Any] = _Timeout()


class Waiter(Protocol):
    """A one-shot slot: ``set``/``fail`` from anywhere, ``wait`` from one task."""

    def set(self, value: Any) -> None: ...
    def fail(self, exc: BaseException) -> None: ...
    async def wait(self, timeout: float | None) -> Any: ...
    def wait_blocking(self, timeout: float | None) -> Any: ...
    def __await__(self) -> Any: ...


class Loop:
    """One running event loop (or plain thread): how to make waiters and reach it."""

    __slots__ = (
        "aio",
        "calls",
        "cancelled_exc",
        "checkpoint",
        "current_task",
        "kind",
        "new_waiter",
        "run_soon_threadsafe",
        "tid",
        "wake",
        "wheel",
    )

    def __init__(
        self,
        kind: str,
        new_waiter: Callable[[], Waiter],
        run_soon_threadsafe: Callable[..., None],
        current_task: Callable[[], Any] | None = None,
        cancelled_exc: type[BaseException] = BaseException,
        checkpoint: Callable[[], Any] | None = None,
    ) -> None:
        #: the backend's cancellation exception (anyio.get_cancelled_exc_class(), cached)
        self.cancelled_exc: type[BaseException] = cancelled_exc
        #: the running task (for introspection: what a process is doing), if any
        self.current_task: Callable[[], Any] | None = current_task
        #: "asyncio", "trio" or "thread"
        self.kind: str = kind
        self.new_waiter: Callable[[], Waiter] = new_waiter
        #: schedule ``fn(*args)`` on this loop from any thread; a closed loop drops it.
        self.run_soon_threadsafe: Callable[..., None] = run_soon_threadsafe
        self.tid: int = _get_ident()
        #: ``await loop.checkpoint()`` yields to the scheduler (cancellation is delivered
        #: there); None for a thread loop, which has no other task to yield to.
        self.checkpoint: Callable[[], Any] | None = checkpoint
        #: thread loops only: the calls queued by ``run_soon_threadsafe``, which the
        #: thread runs before its next message, and how to wake the thread for them.
        self.calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
        self.wake: Callable[[], None] | None = None
        #: asyncio loops only: the timeout wheel, whose timed waits ``call`` inlines
        self.wheel: _AioTimeouts | None = None
        #: asyncio loops only: the asyncio loop (``call`` waits on a bare Future)
        self.aio: asyncio.AbstractEventLoop | None = None


# --------------------------------------------------------------------------- asyncio


_EMPTY_CONTEXT: Final = contextvars.Context()

#: Granularity of the asyncio timeout wheel, in seconds.  A timed wait ends between
#: its deadline and one tick later, never early (a lazily armed one: two ticks).
_TICK: Final = 0.005

#: A deadline (loop clock, seconds) past this one never comes: a wait that long
#: (``timeout=math.inf``) is not put on the wheel.
_NEVER: Final = 1e12


def seconds(timeout: float) -> float:
    """A valid timeout (an int or float >= 0) as a float: an int too large for one is
    ``math.inf`` (wait forever), not an ``OverflowError`` in the deadline arithmetic."""
    try:
        return float(timeout)
    except OverflowError:
        return math.inf


def check_timeout(timeout: Any, what: str, expected: str | None = None) -> float | None:
    """``timeout`` as float seconds if it is a number >= 0 (an int too large for a
    float, ``math.inf``: wait forever), or None.  ``expected`` replaces the default
    "timeout must be ..." in the messages.

    Raises:
        TypeError: it is not a number (a str, a bool...).
        ValueError: it is negative or NaN.
    """
    if timeout is None:
        return None
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(
            f"{what}: "
            f"{expected or 'timeout must be a number of seconds or None (wait forever)'}, "
            f"got {type(timeout).__name__} {timeout!r}"
        )
    if not timeout >= 0:  # also NaN
        raise ValueError(
            f"{what}: "
            f"{expected or 'timeout must be >= 0 seconds (or None to wait forever)'}, "
            f"got {timeout!r}"
        )
    return seconds(timeout)


#: Timed waits at least this long are armed lazily (see :class:`_AioTimeouts`).
LAZY_TIMEOUT: Final = 0.05


class _AioTimeouts:
    """Per-loop timeout wheel for timed waits (calls with a timeout, receive ... after).

    ``loop.call_later`` per call costs a TimerHandle, a heap push and a cancel; a call
    with the default 5 s timeout paid ~3 µs for it.  Instead, deadlines are rounded up
    to a tick and grouped in one dict per tick, with one ``call_at`` per tick that has
    waiters: adding and removing a wait is a dict insert and delete.

    Most timed waits end long before their timeout (a call with the default 5 s
    answered in microseconds), and even that insert and delete, with the clock read
    and the rounding, cost ~700 ns per call.  So a wait of at least
    :data:`LAZY_TIMEOUT` is only *deferred*: appended to ``fresh`` (a list append).
    One sweep per tick drops the waits that ended and puts the rest on the wheel, with
    a deadline counted from the sweep (later than the true one by less than a tick:
    never early).  Those few are remembered in ``moved``, so that ending them removes
    them from the wheel: nothing outlives its wait by more than a tick.
    (bench: call_latency, fan_in -- anyotp timeout=5.0 against timeout=None.)
    """

    __slots__ = ("_buckets", "_loop", "_time", "fresh", "moved", "sweeping")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[int, dict[asyncio.Future[Any], None]] = {}
        # The loop's clock: asyncio's is time.monotonic behind a Python method; call
        # the C function itself (bench: call_latency, fan_in).  Others (uvloop) keep
        # their own.
        self._time: Callable[[], float] = (
            time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )
        #: deferred waits since the last sweep: future -> timeout in seconds
        self.fresh: dict[asyncio.Future[Any], float] = {}
        #: deferred waits the sweep put on the wheel: future -> tick
        self.moved: dict[asyncio.Future[Any], int] = {}
        #: a sweep is scheduled
        self.sweeping: bool = False

    def add(self, fut: asyncio.Future[Any], timeout: float) -> int:
        """Put ``fut`` on the wheel now: it gets TIMEOUT ``timeout`` s from now."""
        if not timeout < _NEVER:  # also an int too large for a float: never fires
            return 0
        return self._add_at(fut, self._time() + timeout)

    def _add_at(self, fut: asyncio.Future[Any], deadline: float) -> int:
        if not deadline < _NEVER:  # math.inf, or longer than the loop will run
            return 0  # tick 0 never fires: the wait is untimed
        tick = int(deadline / _TICK) + 1
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            # In an empty context: call_at keeps the caller's context (the calling
            # process, its state) until the tick fires, long after a call returned.
            self._loop.call_at(tick * _TICK, self._fire, tick, context=_EMPTY_CONTEXT)
        bucket[fut] = None
        return tick

    def remove(self, fut: asyncio.Future[Any], tick: int) -> None:
        """End a wait begun with :meth:`add`."""
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.pop(fut, None)

    def defer(self, fut: asyncio.Future[Any], timeout: float) -> None:
        """Begin a wait of ``timeout`` >= :data:`LAZY_TIMEOUT` seconds lazily; end it
        with :meth:`forget` if ``moved`` is not empty.  (Inlined in ``call``.)"""
        self.fresh[fut] = timeout
        if not self.sweeping:
            self.sweep_soon()

    def forget(self, fut: asyncio.Future[Any]) -> None:
        """End a wait begun with :meth:`defer`."""
        if self.fresh.pop(fut, None) is None:
            tick = self.moved.pop(fut, None)
            if tick is not None:
                self.remove(fut, tick)

    def sweep_soon(self) -> None:
        """Schedule the sweep of ``fresh``, one tick from now."""
        self.sweeping = True
        self._loop.call_at(self._time() + _TICK, self._sweep, context=_EMPTY_CONTEXT)

    def _sweep(self) -> None:
        self.sweeping = False
        fresh = self.fresh
        if not fresh:  # every deferred wait ended before its sweep
            return
        self.fresh = {}
        now = self._time()
        moved = self.moved
        for fut, timeout in fresh.items():
            if fut.done():
                continue
            # Nothing may raise here: an exception would lose the rest of the sweep,
            # and those waits would never time out.  A timeout past _NEVER (an int too
            # large for a float) never fires; one that is not seconds at all (a
            # caller's bug) fails its own wait.
            try:
                if timeout < _NEVER:
                    moved[fut] = self._add_at(fut, now + float(timeout))
            except Exception as e:  # its comparison or float() raised
                fut.set_exception(
                    TypeError(f"a timed wait of {timeout!r}: not a number of seconds ({e})")
                )

    def _fire(self, tick: int) -> None:
        bucket = self._buckets.pop(tick, None)
        if bucket:
            moved = self.moved
            for fut in bucket:
                if moved:
                    moved.pop(fut, None)
                if not fut.done():
                    fut.set_result(TIMEOUT)


class _AioWaiter:
    __slots__ = ("_fut", "_loop", "_tid", "_wheel")

    def __init__(self, loop: asyncio.AbstractEventLoop, tid: int, wheel: _AioTimeouts) -> None:
        self._loop = loop
        self._tid = tid
        self._wheel = wheel
        # asyncio.Future(loop=...) is the C type: one Python frame fewer than
        # loop.create_future() (bench: call_latency).  (A waiter that *is* a Future,
        # a subclass, was tried: asyncio's tasks take a slower path for any future
        # that is not exactly asyncio.Future, and fan_in lost 8%.)
        # With loop=: without it the future asks for the running loop, and that
        # costs a getpid() system call (fork detection) per future.
        self._fut: asyncio.Future[Any] = _Future(loop=loop)

    def __await__(self) -> Any:
        """``await waiter``: wait with no timeout (no coroutine frame of its own)."""
        return self._fut.__await__()

    def set(self, value: Any) -> None:
        fut = self._fut
        if fut.done():  # already woken (many senders, one sleeping receiver): nothing to do
            return
        if _get_ident() == self._tid:
            fut.set_result(value)
        else:
            try:
                self._loop.call_soon_threadsafe(self._set_local, value)
            except RuntimeError:  # loop closed: nobody is waiting any more
                pass

    def _set_local(self, value: Any) -> None:
        fut = self._fut
        if not fut.done():
            fut.set_result(value)

    def fail(self, exc: BaseException) -> None:
        if _get_ident() == self._tid:
            self._fail_local(exc)
        else:
            try:
                self._loop.call_soon_threadsafe(self._fail_local, exc)
            except RuntimeError:
                pass

    def _fail_local(self, exc: BaseException) -> None:
        fut = self._fut
        if not fut.done():
            fut.set_exception(exc)

    async def wait(self, timeout: float | None) -> Any:
        fut = self._fut
        if fut.done():
            return fut.result()
        if timeout is None:
            return await fut
        if timeout <= 0:
            return TIMEOUT
        wheel = self._wheel
        if timeout >= LAZY_TIMEOUT:
            wheel.defer(fut, timeout)
            try:
                return await fut
            finally:
                wheel.forget(fut)
        tick = wheel.add(fut, timeout)
        try:
            return await fut
        finally:
            wheel.remove(fut, tick)

    def wait_blocking(self, timeout: float | None) -> Any:
        raise RuntimeError("an event-loop waiter cannot be waited on from a thread")


def wake_waiter(w: Waiter | asyncio.Future[Any]) -> None:
    """Wake a waiting mailbox owner, from any thread: its :class:`Waiter`, or on
    asyncio the bare ``Future`` it awaits (see ``Mailbox.arm``)."""
    if type(w) is _Future:
        if w.done():  # already woken (many senders, one owner not yet resumed)
            return
        loop = w.get_loop()
        if _get_running_loop() is loop:
            w.set_result(None)
            return
        try:
            loop.call_soon_threadsafe(_set_pending, w)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass
        return
    w.set(None)  # type: ignore[union-attr]


def _set_pending(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


def _aio_loop(loop: asyncio.AbstractEventLoop) -> Loop:
    tid = _get_ident()
    wheel = _AioTimeouts(loop)
    new_waiter: Callable[[], Waiter] = functools.partial(_AioWaiter, loop, tid, wheel)

    def run_soon_threadsafe(fn: Callable[..., Any], *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed loop
            pass

    result = Loop(
        "asyncio",
        new_waiter,
        run_soon_threadsafe,
        asyncio.current_task,
        asyncio.CancelledError,
        _aio_checkpoint,
    )
    result.wheel = wheel
    result.aio = loop
    return result


def _aio_checkpoint() -> Any:
    return asyncio.sleep(0)


# ------------------------------------------------------------------------------ trio


def _trio_loop() -> Loop:
    import outcome
    import trio

    lowlevel = trio.lowlevel
    token = lowlevel.current_trio_token()
    tid = _get_ident()
    succeeded = lowlevel.Abort.SUCCEEDED
    reschedule = lowlevel.reschedule
    current_task = lowlevel.current_task
    wait_task_rescheduled = lowlevel.wait_task_rescheduled
    value_outcome = outcome.Value
    error_outcome = outcome.Error
    current_time = trio.current_time

    # The timeout wheel of this run (see _AioTimeouts): timed waiters in per-tick
    # buckets, fired by one system task that sleeps until the earliest tick.  A
    # trio.move_on_after scope per timed call cost ~13 us (bench: call_latency trio).
    buckets: dict[int, dict[Any, None]] = {}
    ticker: list[Any] = []  # [the ticker's CancelScope] once it runs

    def earliest() -> float:
        return min(buckets) * _TICK if buckets else math.inf

    async def tick_loop() -> None:
        while True:
            with trio.CancelScope(deadline=earliest()) as scope:
                ticker[:] = [scope]
                await trio.sleep_forever()
            now = current_time()
            for tick in sorted(t for t in buckets if t * _TICK <= now):
                for waiter in buckets.pop(tick):
                    waiter._deliver(value_outcome(TIMEOUT))  # outcomes are single-use

    def add_timed(waiter: Any, timeout: float) -> int:
        if not timeout < _NEVER:  # math.inf, a huge int: an untimed wait
            return 0
        deadline = current_time() + timeout
        if not deadline < _NEVER:  # (tick 0 never fires)
            return 0
        tick = int(deadline / _TICK) + 1
        bucket = buckets.get(tick)
        if bucket is None:
            bucket = buckets[tick] = {}
            if not ticker:
                ticker.append(None)
                lowlevel.spawn_system_task(tick_loop, name="anyotp timeout wheel")
            elif ticker[0] is not None and tick * _TICK < ticker[0].deadline:
                ticker[0].deadline = tick * _TICK
        bucket[waiter] = None
        return tick

    def remove_timed(waiter: Any, tick: int) -> None:
        bucket = buckets.get(tick)
        if bucket is not None:
            bucket.pop(waiter, None)

    class _TrioWaiter:
        __slots__ = ("_result", "_task")

        def __init__(self) -> None:
            self._task: Any = None
            self._result: Any = None

        def _deliver(self, result: Any) -> None:
            if self._result is not None:
                return
            self._result = result
            task = self._task
            if task is not None:
                self._task = None
                reschedule(task, result)

        def set(self, value: Any) -> None:
            if _get_ident() == tid:
                self._deliver(value_outcome(value))
            else:
                try:
                    token.run_sync_soon(self._deliver, value_outcome(value))
                except trio.RunFinishedError:
                    pass

        def fail(self, exc: BaseException) -> None:
            if _get_ident() == tid:
                self._deliver(error_outcome(exc))
            else:
                try:
                    token.run_sync_soon(self._deliver, error_outcome(exc))
                except trio.RunFinishedError:
                    pass

        def _abort(self, _: Any) -> Any:
            self._task = None
            return succeeded

        def __await__(self) -> Any:
            result = self._result
            if result is not None:
                return result.unwrap()
            self._task = current_task()
            return (yield from wait_task_rescheduled(self._abort).__await__())

        async def wait(self, timeout: float | None) -> Any:
            result = self._result
            if result is not None:
                return result.unwrap()
            if timeout is None:
                self._task = current_task()
                return await wait_task_rescheduled(self._abort)
            if timeout <= 0:
                return TIMEOUT
            tick = add_timed(self, timeout)
            try:
                self._task = current_task()
                return await wait_task_rescheduled(self._abort)
            finally:
                remove_timed(self, tick)

        def wait_blocking(self, timeout: float | None) -> Any:
            raise RuntimeError("an event-loop waiter cannot be waited on from a thread")

    def run_soon_threadsafe(fn: Callable[..., Any], *args: Any) -> None:
        try:
            token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    return Loop(
        "trio",
        _TrioWaiter,
        run_soon_threadsafe,
        current_task,
        trio.Cancelled,
        lowlevel.checkpoint,
    )


# --------------------------------------------------------------------------- threads


class _ThreadWaiter:
    """A waiter for plain threads: a lock used as a binary semaphore (no polling)."""

    __slots__ = ("_exc", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._value: Any = TIMEOUT
        self._exc: BaseException | None = None

    def set(self, value: Any) -> None:
        if self._value is TIMEOUT and self._exc is None:
            self._value = value
            try:
                self._lock.release()
            except RuntimeError:  # already released by a racing set/fail
                pass

    def fail(self, exc: BaseException) -> None:
        if self._value is TIMEOUT and self._exc is None:
            self._exc = exc
            try:
                self._lock.release()
            except RuntimeError:
                pass

    def wait_blocking(self, timeout: float | None) -> Any:
        if timeout is None:
            got = self._lock.acquire()
        elif timeout <= 0:  # Lock.acquire(True, -1) would block forever
            got = self._lock.acquire(False)
        else:
            got = self._lock.acquire(True, timeout)
        if not got:
            return TIMEOUT
        self._lock.release()  # stay "set" for any later waiter
        if self._exc is not None:
            raise self._exc
        return self._value

    async def wait(self, timeout: float | None) -> Any:
        raise RuntimeError("a thread waiter cannot be awaited")

    def __await__(self) -> Any:
        raise RuntimeError("a thread waiter cannot be awaited")


def thread_waiter() -> Waiter:
    """A waiter a plain (non-event-loop) thread can block on with ``wait_blocking``."""
    return _ThreadWaiter()


def new_thread_loop() -> Loop:
    """A loop for a process whose body is a plain thread (the sync API).

    Its waiters are locks; ``run_soon_threadsafe`` queues the call in ``loop.calls``
    and calls ``loop.wake`` (set by the process to wake its thread), so exit signals
    from other threads run on the process's own thread, ahead of its next message.
    Its ``tid`` is 0 until the thread claims it (``loop.tid = threading.get_ident()``):
    until then every caller counts as foreign.
    """
    calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()

    def run_soon_threadsafe(fn: Callable[..., Any], *args: Any) -> None:
        calls.append((fn, args))
        wake = loop.wake
        if wake is not None:
            wake()

    loop = Loop("thread", thread_waiter, run_soon_threadsafe)
    loop.tid = 0
    loop.calls = calls
    return loop


# ------------------------------------------------------------------------- detection

_tls = threading.local()


def current_loop() -> Loop | None:
    """The :class:`Loop` of the running event loop, or None outside any event loop.

    Cached per thread, keyed by the running loop (asyncio) or run token (trio).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # Another thread may be importing trio right now: a half-initialised module
        # has no `lowlevel` yet, and then no trio run can be active in this thread.
        lowlevel = getattr(sys.modules.get("trio"), "lowlevel", None)
        current_trio_token = getattr(lowlevel, "current_trio_token", None)
        if current_trio_token is None:
            return None
        try:
            token = current_trio_token()
        except RuntimeError:
            return None
        cached = getattr(_tls, "key", None)
        if cached is token:
            result: Loop = _tls.loop
            return result
        result = _trio_loop()
        _tls.key = token
        _tls.loop = result
        return result
    # The last asyncio loop seen, in one tuple (read atomically by any thread): a
    # thread-local lookup costs ~300 ns, and a call from a plain task makes one per
    # call (bench: call_latency, fan_in).
    last = _last_aio
    if last[0] is loop and last[1].tid == _get_ident():
        return last[1]  # type: ignore[no-any-return]
    if getattr(_tls, "key", None) is loop:
        cached_loop: Loop = _tls.loop
    else:
        cached_loop = _aio_loop(loop)
        _tls.key = loop
        _tls.loop = cached_loop
    _remember_aio(loop, cached_loop)
    return cached_loop


#: (asyncio loop, its Loop): the last one :func:`current_loop` returned (valid in the
#: thread the Loop names: an asyncio loop may later run in another thread)
_last_aio: tuple[Any, Any] = (None, None)


def _remember_aio(loop: asyncio.AbstractEventLoop, result: Loop) -> None:
    global _last_aio
    _last_aio = (loop, result)
