"""A process mailbox: FIFO per sender, selective receive without quadratic rescans.

Layout: ``saved + queue`` is the mailbox in arrival order.  ``saved`` holds messages
that the *current* receive signature (``key``, a tuple of compiled matchers) already
rejected; ``queue`` holds the rest.  A receive with the same signature as the last one
resumes after ``saved`` instead of rescanning it, so a process that keeps receiving
``("reply", ref, ANY)`` past a backlog of 10,000 unrelated messages scans each of them
once, not once per receive (Erlang's receive-mark optimisation, generalised).  A
receive with a different signature first puts ``saved`` back in front of ``queue``,
which keeps arrival order.

``put`` may run on any thread: a deque append is atomic, and the wake-up goes through
the waiter, which hands itself to the receiver's loop when called from elsewhere.  The
receiver publishes its waiter *before* its final emptiness check, so a message
appended concurrently is either seen by that check or wakes the waiter.
"""

from __future__ import annotations

import itertools
import threading
import time
from asyncio import AbstractEventLoop, Future
from collections import deque
from collections.abc import Callable
from typing import Any

from .._exceptions import ReceiveTimeout
from ._backend import TIMEOUT, Waiter, wake_waiter
from ._pattern import Matcher

__all__ = ["Mailbox"]

_monotonic = time.monotonic
_get_ident = threading.get_ident
_TWO_RECEIVERS = (
    "two tasks are receiving from the same mailbox at once; a process has one receiver: "
    "receive from the process's own task only"
)


class Mailbox:
    """The message queue of one process.  Only its owner receives from it.

    Its fields are the core's API for server loops that take messages themselves (the
    GenServer and sync server loops, ``Actor.receive``'s fast path): ``queue`` (append
    only from senders; taken from by the owner, who then bumps ``taken`` -- or, in a
    loop that pops without a receive, only once ``marked`` is set), ``saved``
    (what the current receive signature ``key`` skipped), ``waiter`` (published by a
    waiting owner; see :meth:`arm`), ``aio`` (the owner's asyncio loop, or None).

    A waiter is made with ``new_waiter``, or for an untimed wait on asyncio it is a
    bare ``asyncio.Future(loop=aio)``: no waiter object to make, await and set
    (bench: call_latency, ping_pong).  A send wakes either kind with :meth:`notify`
    (or :meth:`put`, which appends too); anything else with
    :func:`~anyotp._core.wake_waiter`.
    """

    __slots__ = ("aio", "key", "marked", "new_waiter", "queue", "saved", "taken", "waiter")

    def __init__(
        self, new_waiter: Callable[[], Waiter], aio: AbstractEventLoop | None = None
    ) -> None:
        self.queue: deque[Any] = deque()
        # Created on the first message a selective receive skips: most processes never
        # skip one, and an idle deque costs ~760 bytes (bench: million, spawn memory).
        # Only the owner touches it.
        self.saved: deque[Any] | tuple[()] = ()
        self.key: tuple[Matcher, ...] | None = None
        self.waiter: Waiter | Future[Any] | None = None
        #: makes the waiter a waiting owner publishes (see :meth:`arm`)
        self.new_waiter: Callable[[], Waiter] = new_waiter
        #: the owner's asyncio loop (untimed waits there await a bare Future), or None
        self.aio: AbstractEventLoop | None = aio
        #: bumped by every owner-side change of ``queue`` other than an append (a take,
        #: a removal, skipped messages put back): a :meth:`mark` is valid while it
        #: has not moved.  A server loop that pops ``queue`` itself bumps it too, or
        #: only once ``marked`` is set.
        self.taken: int = 0
        #: a :meth:`mark` was ever made: until then nothing compares ``taken``, and a
        #: server loop may pop without bumping it -- a bump past 256 makes a new int
        #: object, ~30 ns per message (bench: cast_throughput).  Never reset.
        self.marked: bool = False

    def put(self, message: Any) -> None:
        """Append ``message``; wake the receiver if it is waiting.  Any thread."""
        self.queue.append(message)
        w = self.waiter
        if w is not None:
            wake_waiter(w)

    def notify(self, tid: int) -> None:
        """Wake the waiting owner after a send (call it when ``waiter`` is set).

        ``tid`` is the thread of the owner's loop.  From that thread the waiter is
        cleared as it is woken: woken once is enough, later sends skip the wake
        (bench: casts, fan_in); a bare Future is set directly (see the class).  From
        any other thread the wake goes through :func:`~anyotp._core.wake_waiter`.
        """
        w = self.waiter
        if w is None:
            return
        if _get_ident() != tid:
            wake_waiter(w)
            return
        self.waiter = None
        if type(w) is Future:
            if not w.done():
                w.set_result(None)
        else:
            w.set(None)  # type: ignore[union-attr]

    def wake(self) -> None:
        """Wake the receiver if it is waiting, with no message (any thread)."""
        w = self.waiter
        if w is not None:
            wake_waiter(w)

    def __len__(self) -> int:
        return len(self.queue) + len(self.saved)

    def messages(self, limit: int | None = None) -> list[Any]:
        """The first ``limit`` queued messages (all if None), oldest first, without
        copying the rest of the mailbox (``process_info`` shows ten)."""
        return list(itertools.islice(itertools.chain(self.saved, self.queue), limit))

    def clear(self) -> None:
        self.queue.clear()
        self.saved = ()
        self.taken += 1

    def remove_first(
        self, predicate: Callable[[Any], bool], mark: tuple[int, int] | None = None
    ) -> bool:
        """Remove the oldest message for which ``predicate`` is true (demonitor flush);
        with a valid ``mark``, only among the messages that arrived after it."""
        if mark is not None and mark[0] == self.taken:
            q = self.queue
            for i in range(mark[1], len(q)):
                if predicate(q[i]):
                    del q[i]
                    self.taken += 1
                    return True
            return False
        for box in (self.saved, self.queue):
            for i, m in enumerate(box):
                if predicate(m):
                    del box[i]  # type: ignore[union-attr]
                    self.taken += 1
                    return True
        return False

    def mark(self) -> tuple[int, int]:
        """Where the mailbox ends now: a receive for a reply tagged with a reference
        made after this point need not look at the messages already queued, since none
        of them can hold that reference (the BEAM's receive marker).  Pass it to
        :meth:`receive`; it stays valid until the owner takes or removes a message."""
        self.marked = True  # from now on every take bumps `taken`
        return self.taken, len(self.queue)

    def arm(self) -> Waiter | Future[Any] | None:
        """Publish a waiter for the next message, or return None if one is queued.

        For loops that await the waiter themselves (one coroutine level fewer than
        ``get``); the caller must call :meth:`disarm` after the wait, in a finally.
        The waiter is only to be awaited (on asyncio it is a bare Future).
        """
        if self.waiter is not None:
            raise RuntimeError(_TWO_RECEIVERS)
        aio = self.aio
        w: Waiter | Future[Any] = self.new_waiter() if aio is None else Future(loop=aio)
        self.waiter = w
        if self.queue:  # a message raced in before the waiter was published
            self.waiter = None
            return None
        return w

    def disarm(self) -> None:
        """End a wait begun with :meth:`arm`."""
        self.waiter = None

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for a new message; False on timeout.  The caller saw ``queue`` empty."""
        if self.waiter is not None:
            raise RuntimeError(_TWO_RECEIVERS)
        aio = self.aio
        if timeout is None and aio is not None:
            fut: Future[Any] = Future(loop=aio)  # untimed on asyncio: a bare Future
            self.waiter = fut
            if self.queue:  # a message raced in before the waiter was published
                self.waiter = None
                return True
            try:
                await fut
                return True
            finally:
                self.waiter = None
        w = self.new_waiter()
        self.waiter = w
        if self.queue:  # a message raced in before the waiter was published
            self.waiter = None
            return True
        try:
            if timeout is None:
                await w
                return True
            return await w.wait(timeout) is not TIMEOUT
        finally:
            self.waiter = None

    async def get(self, timeout: float | None = None) -> Any:
        """Take the oldest message, waiting for one; TIMEOUT if none came in time."""
        saved = self.saved
        if saved:
            return saved.popleft()
        q = self.queue
        if q:
            self.taken += 1
            return q.popleft()
        if timeout is None:
            # The hot path of every server loop: one coroutine frame, await the waiter.
            while True:
                if self.waiter is not None:
                    raise RuntimeError(_TWO_RECEIVERS)
                aio = self.aio  # a bare Future on asyncio (see the class): StateMachine idles here
                w: Waiter | Future[Any] = self.new_waiter() if aio is None else Future(loop=aio)
                self.waiter = w
                if not q:
                    try:
                        await w
                    finally:
                        self.waiter = None
                else:
                    self.waiter = None
                if q:
                    self.taken += 1
                    return q.popleft()
        deadline = _monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - _monotonic()
            if not await self._wait(remaining) and not q:
                return TIMEOUT
            if q:
                self.taken += 1
                return q.popleft()

    async def receive(
        self,
        key: tuple[Matcher, ...],
        timeout: float | None,
        mark: tuple[int, int] | None = None,
    ) -> tuple[int, tuple[Any, ...]]:
        """Remove and return the first message matching one of ``key``'s matchers.

        Returns ``(index of the matcher, extracted values)``.  With a still-valid
        ``mark`` (see :meth:`mark`) only the messages that arrived after it are
        scanned: a receive for a fresh reference costs nothing per queued message.

        Raises:
            ReceiveTimeout: nothing matched within ``timeout`` seconds.
        """
        if mark is not None and mark[0] == self.taken:
            return await self._receive_after(key, timeout, mark[1])
        saved = self.saved
        q = self.queue
        if key is not self.key:
            if saved:
                q.extendleft(reversed(saved))
                saved.clear()
                self.taken += 1
            self.key = key
        n = len(key)
        deadline: float | None = None
        while True:
            while q:
                msg = q.popleft()
                self.taken += 1
                try:
                    for i in range(n):
                        got = key[i](msg)
                        if got is not None:
                            return i, got
                except BaseException:
                    q.appendleft(msg)  # a raising predicate must not lose the message
                    raise
                if not isinstance(saved, deque):
                    saved = self.saved = deque()
                saved.append(msg)
            if timeout is None:
                # Inlined wait (no `_wait` frame to resume through; bench: ping_pong).
                w = self.arm()
                if w is not None:
                    try:
                        await w
                    finally:
                        self.waiter = None
                continue
            if deadline is None:
                deadline = _monotonic() + timeout
            remaining = deadline - _monotonic()
            if remaining <= 0:
                break
            if not await self._wait(remaining) and not q:
                break
        raise ReceiveTimeout(
            f"receive(timeout={timeout}) got no matching message within {timeout} s "
            f"({len(self)} non-matching message(s) stay in the mailbox)"
        )

    async def _receive_after(
        self, key: tuple[Matcher, ...], timeout: float | None, start: int
    ) -> tuple[int, tuple[Any, ...]]:
        """:meth:`receive` from index ``start`` of ``queue`` on (a valid mark): earlier
        messages stay where they are, unscanned.  (bench: backlog await)"""
        q = self.queue
        n = len(key)
        i = start
        deadline: float | None = None
        while True:
            # q[i] near the right end is cheap: the tail after a mark is short.
            while i < len(q):
                msg = q[i]
                for j in range(n):
                    got = key[j](msg)
                    if got is not None:
                        del q[i]
                        self.taken += 1
                        return j, got
                i += 1
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    break
            else:
                remaining = None
            if self.waiter is not None:
                raise RuntimeError(_TWO_RECEIVERS)
            aio = self.aio
            w: Waiter | Future[Any] = (
                Future(loop=aio) if remaining is None and aio is not None else self.new_waiter()
            )
            self.waiter = w
            try:
                if len(q) > i:  # a message raced in before the waiter was published
                    continue
                if remaining is None:
                    await w
                elif await w.wait(remaining) is TIMEOUT and len(q) <= i:  # type: ignore[union-attr]
                    break
            finally:
                self.waiter = None
        raise ReceiveTimeout(
            f"receive(timeout={timeout}) got no matching message within {timeout} s "
            f"({len(self)} non-matching message(s) stay in the mailbox)"
        )
