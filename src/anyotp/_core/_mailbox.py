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
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._exceptions import ReceiveTimeout
from ._backend import TIMEOUT, Waiter
from ._pattern import Matcher

__all__ = ["Mailbox"]

_monotonic = time.monotonic
_TWO_RECEIVERS = (
    "two tasks are receiving from the same mailbox at once; a process has one receiver: "
    "receive from the process's own task only"
)


class Mailbox:
    """The message queue of one process.  Only its owner receives from it."""

    __slots__ = ("_key", "_new_waiter", "_q", "_saved", "_waiter", "taken")

    def __init__(self, new_waiter: Callable[[], Waiter]) -> None:
        self._q: deque[Any] = deque()
        # Created on the first message a selective receive skips: most processes never
        # skip one, and an idle deque costs ~760 bytes (bench: million, spawn memory).
        # Only the owner touches it.
        self._saved: deque[Any] | tuple[()] = ()
        self._key: tuple[Matcher, ...] | None = None
        self._waiter: Waiter | None = None
        self._new_waiter = new_waiter
        #: bumped by every owner-side change of ``_q`` other than an append (a take,
        #: a removal, skipped messages put back): a :meth:`mark` is valid while it
        #: has not moved.  A server loop that pops ``_q`` itself bumps it too.
        self.taken: int = 0

    def put(self, message: Any) -> None:
        """Append ``message``; wake the receiver if it is waiting.  Any thread."""
        self._q.append(message)
        w = self._waiter
        if w is not None:
            w.set(None)

    def wake(self) -> None:
        """Wake the receiver if it is waiting, with no message (any thread)."""
        w = self._waiter
        if w is not None:
            w.set(None)

    def __len__(self) -> int:
        return len(self._q) + len(self._saved)

    def messages(self, limit: int | None = None) -> list[Any]:
        """The first ``limit`` queued messages (all if None), oldest first, without
        copying the rest of the mailbox (``process_info`` shows ten)."""
        return list(itertools.islice(itertools.chain(self._saved, self._q), limit))

    def clear(self) -> None:
        self._q.clear()
        self._saved = ()
        self.taken += 1

    def remove_first(
        self, predicate: Callable[[Any], bool], mark: tuple[int, int] | None = None
    ) -> bool:
        """Remove the oldest message for which ``predicate`` is true (demonitor flush);
        with a valid ``mark``, only among the messages that arrived after it."""
        if mark is not None and mark[0] == self.taken:
            q = self._q
            for i in range(mark[1], len(q)):
                if predicate(q[i]):
                    del q[i]
                    self.taken += 1
                    return True
            return False
        for box in (self._saved, self._q):
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
        return self.taken, len(self._q)

    def arm(self) -> Waiter | None:
        """Publish a waiter for the next message, or return None if one is queued.

        For loops that await the waiter themselves (one coroutine level fewer than
        ``get``); the caller must call :meth:`disarm` after the wait, in a finally.
        """
        if self._waiter is not None:
            raise RuntimeError(_TWO_RECEIVERS)
        w = self._new_waiter()
        self._waiter = w
        if self._q:  # a message raced in before the waiter was published
            self._waiter = None
            return None
        return w

    def disarm(self) -> None:
        """End a wait begun with :meth:`arm`."""
        self._waiter = None

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for a new message; False on timeout.  The caller saw ``_q`` empty."""
        if self._waiter is not None:
            raise RuntimeError(_TWO_RECEIVERS)
        w = self._new_waiter()
        self._waiter = w
        if self._q:  # a message raced in before the waiter was published
            self._waiter = None
            return True
        try:
            if timeout is None:
                await w
                return True
            return await w.wait(timeout) is not TIMEOUT
        finally:
            self._waiter = None

    async def get(self, timeout: float | None = None) -> Any:
        """Take the oldest message, waiting for one; TIMEOUT if none came in time."""
        saved = self._saved
        if saved:
            return saved.popleft()
        q = self._q
        if q:
            self.taken += 1
            return q.popleft()
        if timeout is None:
            # The hot path of every server loop: one coroutine frame, await the waiter.
            while True:
                if self._waiter is not None:
                    raise RuntimeError(_TWO_RECEIVERS)
                w = self._new_waiter()
                self._waiter = w
                if not q:
                    try:
                        await w
                    finally:
                        self._waiter = None
                else:
                    self._waiter = None
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
        saved = self._saved
        q = self._q
        if key is not self._key:
            if saved:
                q.extendleft(reversed(saved))
                saved.clear()
                self.taken += 1
            self._key = key
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
                    saved = self._saved = deque()
                saved.append(msg)
            if timeout is None:
                # Inlined wait (no `_wait` frame to resume through; bench: ping_pong).
                w = self.arm()
                if w is not None:
                    try:
                        await w
                    finally:
                        self._waiter = None
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
        """:meth:`receive` from index ``start`` of ``_q`` on (a valid mark): earlier
        messages stay where they are, unscanned.  (bench: backlog await)"""
        q = self._q
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
            if self._waiter is not None:
                raise RuntimeError(_TWO_RECEIVERS)
            w = self._new_waiter()
            self._waiter = w
            try:
                if len(q) > i:  # a message raced in before the waiter was published
                    continue
                if remaining is None:
                    await w
                elif await w.wait(remaining) is TIMEOUT and len(q) <= i:
                    break
            finally:
                self._waiter = None
        raise ReceiveTimeout(
            f"receive(timeout={timeout}) got no matching message within {timeout} s "
            f"({len(self)} non-matching message(s) stay in the mailbox)"
        )
