"""Plain processes: ``spawn`` a function, ``receive`` in it, set process flags.

What it is
    Erlang's most basic primitives, for code that needs no behaviour: a process
    that runs one async function and exits when it returns, and a ``receive`` that
    takes a message from the calling process's own mailbox.  Like ``erlang:spawn``,
    ``spawn_link``, ``spawn_monitor``, ``receive ... end`` and ``process_flag``.

Example::

    async def echo():
        while True:
            msg = await receive(("ping", PID), "stop")
            match msg:
                case ("ping", sender):
                    await send(sender, "pong")
                case "stop":
                    return                      # exits "normal"

    pid = await spawn(echo, task_group=tg)

Ownership
    Structured concurrency says nothing may outlive its task group, so a spawned
    process always belongs to one: called from a process, the new process is owned
    by the caller (it runs in the caller's task group, like ``self.children``, and is
    stopped with ``"shutdown"`` when the caller exits, as any owned child); called
    from plain code, ``task_group=`` is required.  Erlang's ``spawn`` is not owned;
    here only ``spawn_link`` links, so a spawned process's crash does not crash its
    owner unless it was linked.

Exit reasons
    The process exits ``"normal"`` when the function returns (its value is dropped),
    with ``reason`` when it calls ``exit_process(self_pid(), reason)``, and with the
    exception when the function raises (a crash: logged once, links and monitors
    are told).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._actor import Actor, task_group_target
from ._core import (
    PID,
    REDUCTIONS,
    MonitorHook,
    Proc,
    Ref,
    Waiter,
    check_timeout,
    child_tasks,
    compile_patterns,
    current_process,
    make_ref,
    maybe_await,
    on_exit,
    require_current,
)
from ._core import spawn as _spawn_process
from ._exceptions import NotInProcess

__all__ = ["process_flag", "receive", "spawn", "spawn_link", "spawn_monitor"]

_MASK = REDUCTIONS - 1

#: the flags :func:`process_flag` knows
FLAGS = ("trap_exit",)


class SpawnedFunction(Actor):
    """The body of a spawned function: runs ``fn(*args)`` once, then exits ``"normal"``."""

    _otp_fn: Callable[..., Any]
    _otp_args: tuple[Any, ...] = ()
    #: spawn_monitor: the process that monitors this one from its first instant
    _otp_watcher: Proc | None = None
    _otp_ref: Ref | None = None

    async def _otp_boot(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> Any:
        watcher = self._otp_watcher
        if watcher is not None:
            # Monitor before the function runs (erlang:spawn_monitor is atomic): a
            # function that returns at once still produces its DOWN, not "noproc".
            self._otp_ref = ref = make_ref()
            watcher.monitoring[ref] = proc.pid
            on_exit(proc, MonitorHook(ref, watcher), ref)
            self._otp_watcher = None
        return await super()._otp_boot(proc, args, kwargs, ack)

    async def _otp_serve(self, state: Any) -> None:
        await maybe_await(self._otp_fn(*self._otp_args))

    def __repr__(self) -> str:
        name = getattr(self._otp_fn, "__qualname__", repr(self._otp_fn))
        pcb = self._otp_pcb
        return f"<process {name} {pcb.pid!r}>" if pcb is not None else f"<process {name}>"


def _where(fn_name: str, task_group: Any) -> tuple[Any, Proc | None]:
    if task_group is not None:
        return task_group_target(fn_name, task_group)
    me = current_process()
    if me is None or me.tg is None:
        raise TypeError(
            f"{fn_name}() outside a process needs task_group=: pass an anyio task group "
            f"(`async with anyio.create_task_group() as tg: await {fn_name}(fn, "
            "task_group=tg)`); inside a process the new one is owned by the caller"
        )
    return task_group_target(fn_name, child_tasks(me))


async def _start(
    what: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    task_group: Any,
    link: bool,
    watcher: Proc | None = None,
) -> SpawnedFunction:
    if not callable(fn):
        raise TypeError(f"{what}() runs a function, got {type(fn).__name__} {fn!r}")
    if link and current_process() is None:
        raise NotInProcess(
            f"{what}() links the new process to the calling process, but it was called "
            "outside any process: use spawn(fn, task_group=tg), or call it from a process"
        )
    tg, owner = _where(what, task_group)
    body = SpawnedFunction()
    body._otp_fn = fn
    body._otp_args = args
    body._otp_watcher = watcher
    await _spawn_process(body, (), {}, tg, owner=owner, link=link)
    return body


async def spawn(fn: Callable[..., Any], *args: Any, task_group: Any = None) -> PID:
    """Run ``fn(*args)`` in a new process; return its PID once it is running.

    Like ``erlang:spawn/3`` (``spawn(fun)``).  The process exits ``"normal"`` when
    ``fn`` returns and with the exception when it raises.  Inside ``fn``,
    :func:`receive`, :func:`~anyotp.self_pid` and every process function work.

    Args:
        fn: an async function (a sync one runs on the event loop and blocks it);
            ``*args`` are passed to it.
        task_group: where it runs: an anyio TaskGroup, or ``self.children`` of an
            actor (then owned by that actor).  None (the default) inside a process:
            owned by the calling process (stopped with ``"shutdown"``, after 5.0 s
            killed, when the caller exits).

    Returns:
        The new process's PID.

    Raises:
        TypeError: ``fn`` is not callable, or no ``task_group`` outside a process.
    """
    return (await _start("spawn", fn, args, task_group, False)).pid


async def spawn_link(fn: Callable[..., Any], *args: Any, task_group: Any = None) -> PID:
    """Like :func:`spawn`, and link the new process to the caller (``erlang:spawn_link``).

    If either exits abnormally, the other is killed too, unless it traps exits
    (``process_flag("trap_exit", True)``) and gets ``("EXIT", pid, reason)`` instead.

    Raises:
        NotInProcess: called outside a process (there is nothing to link to).
        TypeError: ``fn`` is not callable.
    """
    return (await _start("spawn_link", fn, args, task_group, True)).pid


async def spawn_monitor(
    fn: Callable[..., Any], *args: Any, task_group: Any = None
) -> tuple[PID, Ref]:
    """Like :func:`spawn`, and monitor the new process (``erlang:spawn_monitor``).

    When it exits, the caller receives ``("DOWN", ref, "process", pid, reason)``.

    Returns:
        ``(pid, ref)``: the new process and the monitor's reference.

    Raises:
        NotInProcess: called outside a process (nobody would receive the DOWN).
        TypeError: ``fn`` is not callable.
    """
    me = require_current("spawn_monitor()")
    body = await _start("spawn_monitor", fn, args, task_group, False, me)
    assert body._otp_ref is not None
    return body.pid, body._otp_ref


# ------------------------------------------------------------------- receive

_whole: dict[tuple[Any, ...], tuple[Callable[[Any], tuple[Any, ...] | None], ...]] = {}
_WHOLE_MAX = 1024


def _returning_message(
    compiled: tuple[Callable[[Any], tuple[Any, ...] | None], ...],
) -> tuple[Callable[[Any], tuple[Any, ...] | None], ...]:
    """Matchers that extract the whole message; the same tuple for the same patterns
    (the mailbox recognises a repeated receive by identity)."""
    got = _whole.get(compiled)
    if got is not None:
        return got

    def whole(m: Callable[[Any], tuple[Any, ...] | None]) -> Callable[[Any], tuple[Any] | None]:
        def matcher(msg: Any) -> tuple[Any] | None:
            return (msg,) if m(msg) is not None else None

        return matcher

    got = tuple(whole(m) for m in compiled)
    if len(_whole) >= _WHOLE_MAX:
        _whole.clear()
    _whole[compiled] = got
    return got


def _any(msg: Any) -> tuple[Any]:
    return (msg,)


_ANY_MESSAGE = (_any,)


async def receive(*patterns: Any, timeout: float | None = None) -> Any:
    """Take the first message of the calling process's mailbox matching a pattern.

    Like Erlang's ``receive``: messages are looked at oldest first; the first that
    matches any of ``patterns`` is removed and returned *whole*; messages that match
    nothing stay in the mailbox, in order.  With no patterns, the oldest message is
    taken.  Branch on the result with ``match``.  Works in any process: a spawned
    function, or an actor's own task (for ``(pattern, handler)`` pairs use
    ``Actor.receive``).

    Args:
        *patterns: patterns as for :func:`~anyotp.match` (literals, types, ``ANY``,
            ``_``, tuples of those).
        timeout: seconds to wait for a match; None waits forever; 0 only looks at
            the messages already there.

    Returns:
        The message that matched.

    Raises:
        NotInProcess: called outside a process.
        ReceiveTimeout: nothing matched within ``timeout`` (a ``TimeoutError``).
        InvalidPattern: a pattern contains a dict or set literal.
    """
    proc = require_current("receive()")
    if timeout is not None:
        timeout = check_timeout(timeout, "receive()")
    key = _returning_message(compile_patterns(patterns)) if patterns else _ANY_MESSAGE
    _, (msg,) = await proc.mbox.receive(key, timeout)
    proc.reductions = r = proc.reductions + 1
    if not r & _MASK:  # a receive that keeps finding queued messages yields too
        checkpoint = proc.loop.checkpoint
        if checkpoint is not None:
            await checkpoint()
    return msg


# ------------------------------------------------------------------ flags


def process_flag(flag: str, value: Any) -> Any:
    """Set a flag of the calling process; return its old value.

    Like ``erlang:process_flag/2``.  Supported: ``"trap_exit"`` (bool): when True,
    exit signals from linked processes arrive as ``("EXIT", pid, reason)`` messages
    instead of killing the process (``"kill"`` still kills).  The change applies to
    the next signal that arrives.  It sets the ``trap_exit`` attribute of the
    process's behaviour object (an actor's ``self.trap_exit``).

    Args:
        flag: the flag's name.
        value: its new value.

    Returns:
        The flag's previous value.

    Raises:
        NotInProcess: called outside a process.
        ValueError: ``flag`` is not a supported flag.
    """
    if flag not in FLAGS:
        raise ValueError(
            f"process_flag({flag!r}, {value!r}): unknown flag; supported flags: "
            f"{', '.join(repr(f) for f in FLAGS)}"
        )
    proc = require_current(f"process_flag({flag!r})")
    body = proc.body
    old = bool(body.trap_exit)
    body.trap_exit = bool(value)
    return old
