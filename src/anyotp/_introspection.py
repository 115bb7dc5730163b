"""Introspection, in the sense of Erlang's ``sys`` and ``erlang:process_info/1``.

* :func:`get_state` / :func:`replace_state` read or change a GenServer's state
  between two messages (a system message, like ``sys:get_state/1``), so they never
  see a half-handled message;
* :func:`process_info` describes any live process: status, mailbox length, links,
  monitors, registered name, and the callback it is running now;
* :func:`supervision_tree` / :func:`format_tree` walk a supervisor and its children.

These are debugging and operations tools: they cost a message round trip (or a walk
of the process's stack) and should not sit on a hot path.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, NamedTuple

from ._child_spec import supervisor_request
from ._core import DEAD, PID, SYSTEM_TAG, Proc, Target, gen_call, noproc_message, route
from ._exceptions import NoProcess
from ._genserver import GenServer

__all__ = [
    "TreeNode",
    "format_tree",
    "get_state",
    "process_info",
    "replace_state",
    "supervision_tree",
]


def _server(target: Target, what: str) -> Proc:
    dest = route(target, f"{what}()")
    if type(dest) is not Proc:
        raise NoProcess(noproc_message(f"{what}()", target), target)
    return dest


def _handles_system(proc: Proc) -> bool:
    return getattr(proc.body, "_otp_system", None) is not None


async def get_state(target: Target, timeout: float | None = 5.0) -> Any:
    """The state of a process, between two of its messages; like ``sys:get_state/2``.

    For a GenServer (or StateMachine, whose state is ``(state, data)``) the request is
    queued behind the messages already in its mailbox.  For other actors it is the
    state the actor's ``run`` last returned.

    Args:
        target: PID, registered name or via-name.
        timeout: seconds to wait (GenServers only); None waits forever.

    Raises:
        NoProcess: the process is not alive.
        CallTimeout, CallExit: as :func:`~anyotp.call`, for GenServers.
    """
    proc = _server(target, "get_state")
    if _handles_system(proc):
        return await _system_call(proc, ("get_state",), timeout)
    return proc.state


async def _system_call(proc: Proc, request: tuple[Any, ...], timeout: float | None) -> Any:
    # ("$system", from_, request): a call with the system tag, which the behaviour
    # answers between messages (like sys:get_state/replace_state in OTP).
    return await gen_call(proc.pid, SYSTEM_TAG, request, timeout)


async def replace_state(
    target: Target, fn: Callable[[Any], Any], timeout: float | None = 5.0
) -> Any:
    """Replace a GenServer's state with ``fn(state)`` between two messages; returns the
    new state.  Like ``sys:replace_state/3``.  ``fn`` may be sync or async; if it
    raises, the state is unchanged and the exception is raised here.

    Raises:
        NoProcess: the process is not alive.
        TypeError: the process is not a GenServer.
        CallTimeout, CallExit: as :func:`~anyotp.call`.
    """
    proc = _server(target, "replace_state")
    if not _handles_system(proc):
        raise TypeError(
            f"replace_state({target!r}): {type(proc.body).__name__} is not a GenServer; "
            "only GenServers and StateMachines handle system messages between their messages"
        )
    return await _system_call(proc, ("replace_state", fn), timeout)


_CALLBACKS = frozenset(
    {
        "init",
        "run",
        "terminate",
        "handle_call",
        "handle_cast",
        "handle_info",
        "handle_continue",
        "handle_task_end",
        "receive",
        "handle_event",
    }
)


def _current_callback(task: Any) -> str | None:
    """Walk the task's coroutine chain; the innermost frame that is a callback."""
    coro = None
    if task is not None:
        coro = getattr(task, "coro", None)  # trio
        if coro is None and hasattr(task, "get_coro"):
            coro = task.get_coro()  # asyncio
    found: str | None = None
    seen = 0
    while coro is not None and seen < 64:
        seen += 1
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None and code.co_name in _CALLBACKS:
            found = code.co_name
        nxt = getattr(coro, "cr_await", None)
        if nxt is None:
            nxt = getattr(coro, "gi_yieldfrom", None)
        coro = nxt if isinstance(nxt, types.CoroutineType | types.GeneratorType) else None
    return found


def _behaviour(cls: type) -> str:
    """The nearest anyotp behaviour ``cls`` derives from (``"GenServer"``,
    ``"Supervisor"``, ``"Task"``...): the first class of its MRO defined in anyotp."""
    for base in cls.__mro__:
        if base.__module__.startswith("anyotp._") and not base.__name__.startswith("_"):
            return base.__name__
    return "Process"


def process_info(target: Target) -> dict[str, Any] | None:
    """A snapshot of a live process, like ``erlang:process_info/1``; None if not alive.

    Keys: ``pid``, ``class``, ``behaviour`` (the anyotp base class: ``"GenServer"``,
    ``"Supervisor"``...), ``status`` (``"starting"``, ``"running"``,
    ``"exiting"``), ``message_queue_len``, ``messages`` (up to 10, oldest first),
    ``links``, ``monitors`` (refs this process monitors), ``monitored_by`` (count),
    ``registered_name``, ``trap_exit``, ``parent``, ``owner``, ``children`` (owned
    processes), ``current_callback`` (``"handle_call"``, ``"run"``, ... or None when
    idle), ``state`` (through ``format_status`` for GenServers), ``reductions``
    (messages handled so far).
    """
    try:
        proc = route(target, "process_info()")
    except NoProcess:
        return None
    if type(proc) is not Proc or proc.status is DEAD:
        return None
    body = proc.body
    state = proc.state
    if isinstance(body, GenServer):
        state = body.format_status(state)
    owner = proc.owner
    return {
        "pid": proc.pid,
        "class": type(body).__name__,
        "behaviour": _behaviour(type(body)),
        "status": proc.status.name.lower(),
        "message_queue_len": len(proc.mbox),
        "messages": proc.mbox.messages(10),
        "links": sorted(proc.links, key=lambda p: (p.node, p.id)),
        "monitors": list(proc.monitoring),
        "monitored_by": len(proc.monitors),
        "registered_name": proc.name,
        "trap_exit": body.trap_exit,
        "parent": proc.parent,
        "owner": owner.pid if owner is not None else None,
        "children": [c.pid for c in list(proc.owned)],
        "current_callback": _current_callback(proc.task),
        "state": state,
        "reductions": proc.reductions,
    }


class TreeNode(NamedTuple):
    """One node of :func:`supervision_tree`."""

    id: str | None  #: the child id in its supervisor (None for the root)
    pid: PID | None  #: None for a child that is not running
    cls: str  #: class name
    children: list[TreeNode]  #: empty for workers


async def supervision_tree(root: Target, timeout: float | None = 5.0) -> TreeNode:
    """The supervisor ``root`` and, recursively, its children (``which_children``).

    Raises:
        NoProcess: ``root`` is not alive.
    """
    proc = _server(root, "supervision_tree")
    return await _tree(None, proc.pid, type(proc.body).__name__, timeout)


async def _tree(child_id: str | None, pid: PID | None, cls: str, timeout: float | None) -> TreeNode:
    kids: list[TreeNode] = []
    if pid is not None:
        try:
            dest = route(pid)
        except NoProcess:
            dest = None
        if type(dest) is Proc and getattr(dest.body, "_otp_supervisor", False):
            try:
                rows = await supervisor_request(pid, "which_children", timeout=timeout)
            except Exception:  # exited meanwhile
                rows = []
            for row in rows:
                kids.append(await _tree(row.id, row.pid, row.actor_class.__name__, timeout))
    return TreeNode(child_id, pid, cls, kids)


async def format_tree(root: Target, timeout: float | None = 5.0) -> str:
    """:func:`supervision_tree` drawn as text, one process a line::

    <PID 0.7> App
    ├── cache <PID 0.8> Cache
    └── workers <PID 0.9> WorkerSup
        └── w1 <PID 0.10> Worker
    """
    node = await supervision_tree(root, timeout)
    lines = [f"{node.pid!r} {node.cls}"]

    def walk(children: list[TreeNode], prefix: str) -> None:
        for i, child in enumerate(children):
            last = i == len(children) - 1
            pid = repr(child.pid) if child.pid is not None else "(not running)"
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.id} {pid} {child.cls}")
            walk(child.children, prefix + ("    " if last else "│   "))

    walk(node.children, "")
    return "\n".join(lines)
