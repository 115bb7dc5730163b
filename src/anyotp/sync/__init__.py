"""anyotp.sync: the thread-based GenServer API of seeds 001 and 002.

For code that is not async: a server's callbacks run on its own thread, clients block
in ``call``.  It is the seeds' ``genserver`` API -- change ``from genserver import X``
to ``from anyotp.sync import X`` -- built on anyotp's process core, so a sync server
has a PID and can be linked, monitored, registered, supervised by an async
``anyotp.Supervisor`` and called from async code, and sync code can call async
servers with :func:`call` / :func:`cast`.

Example::

    from anyotp.sync import GenServer

    class Counter(GenServer[int]):
        def init(self) -> int:
            return 0

        def handle_cast(self, message: dict, state: int) -> int:
            return state + 1 if message.get("action") == "increment" else state

        def handle_call(self, message: dict, state: int) -> tuple[int, int]:
            return state, state

    with Counter() as counter:
        counter.cast({"action": "increment"})
        assert counter.call({"action": "get"}) == 1

Client / server split
    ``start``/``stop``/``call``/``cast`` run in the caller's thread; ``init``,
    ``handle_*`` and ``terminate`` run on the server's thread, one message at a time,
    so the state needs no lock.  A handler that blocks delays only its own server.

Timeouts
    ``call`` and ``stop`` wait forever by default (``timeout=None``, as in the seeds);
    a timeout is in seconds and raises :class:`GenServerTimeoutError`, which is also a
    ``TimeoutError``.  A late reply is discarded.

Errors
    Everything this API raises is a :class:`GenServerError` (see docs/sync.md for the
    table).  A handler that raises does not stop the server: ``handle_call``'s error
    goes to the caller, ``handle_cast``'s is logged; the state is kept.

An event loop for thread-first programs
    :func:`loop_thread` runs an event loop in a background thread that hosts async
    processes (``lt.start(Cls, ...)`` returns a PID to ``call``), and stops them all,
    in order, when its ``with`` block ends.

When not to use it
    In async code, use ``anyotp.GenServer``: blocking calls are refused on an
    event-loop thread, since they would stall every async process on it.
"""

from .._exceptions import GenServerError as GenServerError
from .._exceptions import GenServerTimeoutError as GenServerTimeoutError
from ._client import call as call
from ._client import cast as cast
from ._loop_thread import LoopThread as LoopThread
from ._loop_thread import loop_thread as loop_thread
from ._server import GenServer as GenServer
from ._server import TypedGenServer as TypedGenServer

__all__ = [
    "GenServer",
    "GenServerError",
    "GenServerTimeoutError",
    "LoopThread",
    "TypedGenServer",
    "call",
    "cast",
    "loop_thread",
]
