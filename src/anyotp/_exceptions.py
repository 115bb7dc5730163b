"""Every exception anyotp raises, in one place.

The hierarchy::

    Exception
     └── OTPError                         base of everything anyotp raises
          ├── NoProcess (LookupError)      the target process is dead or the name unknown
          ├── ReceiveTimeout (TimeoutError) ``receive(timeout=)`` found no match in time
          ├── InvalidPattern (TypeError)   a pattern or a ``receive`` argument is malformed
          ├── NotInProcess (RuntimeError)  a process-only function was used outside a process
          ├── StartError                   a process failed to start (``init`` raised or exited)
          ├── ExitError                    a process we waited on exited abnormally
          ├── CallError                    a ``call`` failed (server, request, timeout, reason)
          │    ├── CallTimeout (TimeoutError)  no reply within the timeout
          │    ├── CallNoProc (NoProcess)      the server was dead or unknown when called
          │    ├── CallExit                    the server exited before replying
          │    └── GenServerError              the synchronous API's error (``anyotp.sync``)
          │         ├── GenServerTimeoutError (CallTimeout)
          │         ├── GenServerNoProc (CallNoProc)
          │         └── GenServerExit (CallExit)
          ├── SupervisorError (ValueError) a bad ``ChildSpec`` or supervisor request
          └── TaskTimeout (TimeoutError)   a task's result did not come in time

Exceptions that mean "this kind of thing" in Python subclass the builtin as well, so
``except TimeoutError`` catches every timeout and ``except LookupError`` every
unknown process.  This module imports only the standard library.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CallError",
    "CallExit",
    "CallNoProc",
    "CallTimeout",
    "ExitError",
    "GenServerError",
    "GenServerExit",
    "GenServerNoProc",
    "GenServerTimeoutError",
    "InvalidPattern",
    "NoProcess",
    "NotInProcess",
    "OTPError",
    "ReceiveTimeout",
    "StartError",
    "SupervisorError",
    "TaskTimeout",
]


class OTPError(Exception):
    """Base class of every error raised by anyotp."""


class NoProcess(OTPError, LookupError):
    """The target is not a live process: a dead PID, or a name nobody registered.

    Attributes:
        target: the PID or name that was used.
    """

    def __init__(self, message: str, target: object = None) -> None:
        super().__init__(message)
        self.target = target


class ReceiveTimeout(OTPError, TimeoutError):
    """``receive(..., timeout=t)`` saw no matching message within ``t`` seconds.

    Like the ``after`` clause of Erlang's ``receive``.  Messages that did not match stay
    in the mailbox, in order.
    """


class InvalidPattern(OTPError, TypeError):
    """A pattern (or a ``receive`` argument) is not one anyotp can match with."""


class NotInProcess(OTPError, RuntimeError):
    """A function that acts on "the current process" was called outside any process."""


class StartError(OTPError):
    """A process failed to start: its ``init`` raised or it exited before running.

    The original exception, if any, is chained as ``__cause__``.

    Attributes:
        reason: the exit reason of the process that failed to start.
    """

    def __init__(self, message: str, reason: Any = None) -> None:
        super().__init__(message)
        self.reason = reason


class ExitError(OTPError):
    """A process that was being waited on exited with ``reason`` instead of a result.

    Attributes:
        pid: the process that exited.
        reason: its exit reason (``"shutdown"``, ``"killed"``, an exception, ...).
    """

    def __init__(self, message: str, pid: Any = None, reason: Any = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.reason = reason


class CallError(OTPError):
    """A ``call`` did not produce a reply.

    Like the exit a ``gen_server:call/3`` raises in Erlang, it names the server, the
    request and the timeout.

    Attributes:
        server: the PID or name that was called.
        request: the request that was sent.
        timeout: the timeout in seconds (``None`` = infinity).
        reason: why: ``"timeout"``, ``"noproc"``, ``"calling_self"``, or the server's
            exit reason.
    """

    def __init__(
        self, message: str, server: Any, request: Any, timeout: float | None, reason: Any
    ) -> None:
        super().__init__(message)
        self.server = server
        self.request = request
        self.timeout = timeout
        self.reason = reason


class CallTimeout(CallError, TimeoutError):
    """No reply came within the call's timeout; a late reply is discarded."""


class CallNoProc(CallError, NoProcess):
    """The called server was not alive (dead PID or unregistered name)."""


class CallExit(CallError):
    """The server exited while the call was waiting; ``reason`` is its exit reason."""


class SupervisorError(OTPError, ValueError):
    """A supervisor was given a bad child spec or a request about an unknown child."""


class TaskTimeout(OTPError, TimeoutError):
    """A task did not finish in time: ``Task.await_``, ``Task.await_many`` or
    ``Task.async_stream``.

    Like the ``:timeout`` exit of Elixir's ``Task.await/2``.  ``Task.await_`` and
    ``Task.await_many`` leave the tasks running (stop them with ``Task.shutdown``);
    ``Task.async_stream`` stops every task it started before raising.

    Attributes:
        task: the ``TaskHandle`` that was awaited (for ``await_many``, the first one
            without a result), or the PID of the stream's task.
        timeout: the timeout in seconds.
    """

    def __init__(self, message: str, task: Any = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.task = task
        self.timeout = timeout


class GenServerError(CallError):
    """Error of the synchronous ``anyotp.sync`` GenServer API.

    A :class:`CallError`: a sync call to a dead server raises one that is also a
    :class:`CallNoProc` (a ``LookupError``), a sync timeout one that is also a
    :class:`CallTimeout` (a ``TimeoutError``), a server that stopped before replying
    one that is also a :class:`CallExit`.

    Attributes (None where they do not apply):
        server: the server's PID or name.
        request: the message of the failed ``call``/``cast``.
        timeout: the call's timeout in seconds.
        reason: why: ``"timeout"``, ``"noproc"``, ``"calling_self"``, or the server's
            exit reason.
    """

    def __init__(
        self,
        message: str,
        *,
        server: Any = None,
        request: Any = None,
        timeout: float | None = None,
        reason: Any = None,
    ) -> None:
        CallError.__init__(self, message, server, request, timeout, reason)


class GenServerTimeoutError(GenServerError, CallTimeout):
    """A synchronous ``call`` or ``stop`` did not finish within its timeout."""


class GenServerNoProc(GenServerError, CallNoProc):
    """A synchronous ``call``/``cast`` to a server that is not alive (or a name nobody
    registered)."""


class GenServerExit(GenServerError, CallExit):
    """The server stopped before answering a synchronous ``call``."""
