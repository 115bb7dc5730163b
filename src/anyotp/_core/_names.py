"""Locally registered names, like Erlang's ``register/2`` and ``whereis/1``.

A process has at most one registered name; the name is released when it exits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

from .._exceptions import NoProcess
from ._ids import PID

if TYPE_CHECKING:
    from ._process import Proc

__all__ = [
    "Target",
    "Via",
    "ViaRegistry",
    "names",
    "register",
    "register_or_holder",
    "registered",
    "release_name",
    "resolve_via",
    "set_global_registry",
    "unregister",
    "whereis",
]


@runtime_checkable
class ViaRegistry(Protocol):
    """What a via-name needs from its registry, like Erlang's ``{via, Module, Name}``.

    ``anyotp.Registry`` implements it; any object (or process) with these three
    methods can name processes for ``send``, ``cast``, ``call`` and ``start(name=...)``.
    """

    def whereis_name(self, key: Any) -> PID | None:
        """The PID registered under ``key``, or None."""
        ...

    def register_name(self, key: Any, pid: PID) -> bool:
        """Register ``pid`` under ``key``; False if ``key`` is taken."""
        ...

    def unregister_name(self, key: Any) -> None:
        """Remove ``key``."""
        ...


class Via(NamedTuple):
    """A name held by a registry: ``Via(registry, key)``; same as ``("via", registry, key)``.

    ``registry`` is a :class:`ViaRegistry` object, or the PID or registered name of a
    process that is one (an ``anyotp.Registry``).
    """

    registry: Any
    key: Any


#: Anything that names a process, for ``send``, ``cast``, ``call``, ``link``,
#: ``monitor`` and every client function: a :class:`PID`, a registered name
#: (``str``), or a via-name: ``Via(registry, key)``, ``("via", registry, key)``, or
#: ``("global", name)`` (a name in the registry of the connected nodes).
Target: TypeAlias = PID | str | Via | tuple[str, Any, Any] | tuple[str, Any]


def resolve_via(target: Any) -> tuple[ViaRegistry, Any] | None:
    """``(registry, key)`` if ``target`` is a via-name, else None.

    Raises:
        NoProcess: the registry process is not alive.
        TypeError: the registry does not implement :class:`ViaRegistry`.
    """
    kind = type(target)
    if kind is Via:
        registry, key = target
    elif kind is tuple and len(target) == 3 and target[0] == "via":
        _, registry, key = target
    elif kind is tuple and len(target) == 2 and target[0] == "global":
        registry = _global[0]
        if registry is None:
            raise NoProcess(
                f"{target!r}: global names need a node (start one with anyotp.node.start)",
                target,
            )
        return registry, target[1]
    else:
        return None
    if type(registry) is PID or type(registry) is str:
        name = registry
        proc = name._proc if isinstance(name, PID) else _names.get(name)
        registry = None if proc is None else proc.body
        if registry is None:
            raise NoProcess(f"via-name {target!r}: the registry {name!r} is not alive", target)
    if not isinstance(registry, ViaRegistry):
        raise TypeError(
            f"via-name {target!r}: {registry!r} is not a registry (it needs "
            "whereis_name/register_name/unregister_name, like anyotp.Registry)"
        )
    return registry, key


#: name -> live process.  Mutated under ``_lock``; read without it (dict reads are atomic).
_names: dict[str, Proc] = {}
names = _names
_lock = threading.Lock()
#: the registry behind ``("global", name)`` (installed by a node), or None
_global: list[ViaRegistry | None] = [None]


def set_global_registry(registry: ViaRegistry | None) -> None:
    """Install the registry that ``("global", name)`` targets resolve through."""
    _global[0] = registry


def register_or_holder(name: Any, proc: Proc) -> PID | None:
    """Register ``proc`` under ``name`` (a str or a via-name) for ``start(name=)``.

    Returns None once registered, else the PID holding the name (or a placeholder
    when the registry does not say who).

    Raises:
        TypeError: ``name`` is neither a str nor a via-name.
        NoProcess: a via-name's registry is not alive.
    """
    via = resolve_via(name)
    if via is not None:
        if via[0].register_name(via[1], proc.pid):
            return None
        holder = via[0].whereis_name(via[1])
        return holder if holder is not None else proc.pid
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"a process name is a non-empty str or a via-name (Via(registry, key)), "
            f"got {type(name).__name__} {name!r}"
        )
    if register(name, proc.pid):
        return None
    holder_proc = _names.get(name)
    return holder_proc.pid if holder_proc is not None else proc.pid


def register(name: str, pid: PID) -> bool:
    """Register ``pid`` under ``name``; like ``erlang:register/2``.

    Args:
        name: a non-empty string.
        pid: a live local process.

    Returns:
        True if registered; False if ``name`` is already taken (by any process, this
        one included) or the process already has a name: like Erlang, a process has
        at most one registered name.

    Raises:
        TypeError: ``name`` is not a non-empty str or ``pid`` is not a PID.
        NoProcess: ``pid`` is not alive.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register() takes a non-empty str name, got {name!r}")
    if type(pid) is not PID:
        raise TypeError(f"register({name!r}, ...) takes a PID, got {type(pid).__name__} {pid!r}")
    proc = pid._proc
    if proc is None or proc.status >= 2:  # EXITING or DEAD
        raise NoProcess(f"register({name!r}, {pid!r}): the process is not alive", pid)
    with _lock:
        if name in _names or proc.name is not None:
            return False
        _names[name] = proc
        proc.name = name
        # The process may have died meanwhile on its own thread (a sync server): _die
        # sets DEAD before it looks at _name, so either it saw the name and releases it
        # once we unlock, or we see DEAD here and undo.
        if proc.status >= 3:
            del _names[name]
            proc.name = None
            raise NoProcess(f"register({name!r}, {pid!r}): the process is not alive", pid)
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
        proc.name = None
    return True


def whereis(name: str) -> PID | None:
    """The PID registered as ``name``, or None; like ``erlang:whereis/1``."""
    proc = _names.get(name)
    return None if proc is None else proc.pid


def registered() -> list[str]:
    """All registered names, sorted; like ``erlang:registered/0``."""
    return sorted(_names)


def release_name(proc: Proc) -> None:
    """Drop ``proc``'s registered name (it is dying)."""
    name = proc.name
    if name is not None:
        with _lock:
            if _names.get(name) is proc:
                del _names[name]
            proc.name = None
