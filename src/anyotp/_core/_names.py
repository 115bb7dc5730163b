"""Locally registered names, like Erlang's ``register/2`` and ``whereis/1``.

A process has at most one registered name; the name is released when it exits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._exceptions import NoProcess
from ._ids import PID

if TYPE_CHECKING:
    from ._process import Process

__all__ = ["register", "registered", "unregister", "whereis"]

#: name -> live process.  Mutated under ``_lock``; read without it (dict reads are atomic).
_names: dict[str, Process] = {}
_lock = threading.Lock()


def register(name: str, pid: PID) -> bool:
    """Register ``pid`` under ``name``; like ``erlang:register/2``.

    Args:
        name: a non-empty string.
        pid: a live local process.

    Returns:
        True if registered; False if ``name`` is already taken by a live process or
        the process already has a (different) name.

    Raises:
        TypeError: ``name`` is not a non-empty str or ``pid`` is not a PID.
        NoProcess: ``pid`` is not alive.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register() takes a non-empty str name, got {name!r}")
    if type(pid) is not PID:
        raise TypeError(f"register({name!r}, ...) takes a PID, got {type(pid).__name__} {pid!r}")
    proc = pid._proc
    if proc is None or proc._status >= 2:  # EXITING or DEAD
        raise NoProcess(f"register({name!r}, {pid!r}): the process is not alive", pid)
    with _lock:
        holder = _names.get(name)
        if holder is not None:
            return holder is proc
        if proc._name is not None:
            return False
        _names[name] = proc
        proc._name = name
    return True


def unregister(name: str) -> bool:
    """Remove the registration of ``name``; like ``erlang:unregister/1``.

    Returns:
        True if ``name`` was registered, False otherwise.
    """
    with _lock:
        proc = _names.pop(name, None)
        if proc is None:
            return False
        proc._name = None
    return True


def whereis(name: str) -> PID | None:
    """The PID registered as ``name``, or None; like ``erlang:whereis/1``."""
    proc = _names.get(name)
    return None if proc is None else proc.pid


def registered() -> list[str]:
    """All registered names, sorted; like ``erlang:registered/0``."""
    return sorted(_names)


def _release(proc: Process) -> None:
    name = proc._name
    if name is not None:
        with _lock:
            if _names.get(name) is proc:
                del _names[name]
            proc._name = None
