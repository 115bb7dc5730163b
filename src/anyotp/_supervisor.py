"""Supervisors: processes that start children, watch them, and restart them.

A :class:`Supervisor` subclass sets ``strategy`` (and optionally ``max_restarts`` /
``max_seconds``) and returns :class:`ChildSpec` items from ``child_specs()``::

    class App(Supervisor):
        strategy = RestartStrategy.ONE_FOR_ONE

        def child_specs(self):
            return [
                ChildSpec(id="cache", actor_class=Cache),
                ChildSpec(id="worker", actor_class=Worker, args=(10,)),
            ]

    async with anyio.create_task_group() as tg:
        sup = await App.start(task_group=tg)

Children start in order, each after the previous one's ``init`` returned; they are
linked to the supervisor, which traps exits.  When a child exits, its restart type
decides (``PERMANENT``: always restart, ``TRANSIENT``: only after an abnormal exit,
``TEMPORARY``: never) and the strategy says which children restart with it:

=================  ===============================================================
``ONE_FOR_ONE``    only the child that exited
``ONE_FOR_ALL``    all children: the others are stopped (reverse order), then all
                   are started again (in order)
``REST_FOR_ONE``   the child and every child started after it
=================  ===============================================================

More than ``max_restarts`` restarts within ``max_seconds`` seconds means restarting
does not help: the supervisor stops all children and exits with reason
``"shutdown"``, and *its* supervisor decides what to do.  On exit, children are
stopped in reverse start order; each gets its ``shutdown`` seconds (``"shutdown"``
reason, ``terminate`` runs) before it is killed.  Like Erlang's ``supervisor``.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ._core._ids import PID
from ._core._names import Via
from ._core._process import From, Process, Shutdown, log, start_process
from ._core._process import call as _call
from ._exceptions import StartError, SupervisorError
from ._genserver import GenServer

__all__ = ["ChildInfo", "ChildSpec", "RestartStrategy", "RestartType", "Supervisor"]


class RestartStrategy(enum.Enum):
    """Which children restart when one exits (``supervisor`` strategies)."""

    ONE_FOR_ONE = "one_for_one"  #: only the child that exited
    ONE_FOR_ALL = "one_for_all"  #: every child
    REST_FOR_ONE = "rest_for_one"  #: the child and those started after it


class RestartType(enum.Enum):
    """When a child is restarted (the ``restart`` field of a child spec)."""

    PERMANENT = "permanent"  #: always
    TRANSIENT = "transient"  #: only after an abnormal exit (not normal/shutdown)
    TEMPORARY = "temporary"  #: never; the child is forgotten when it exits


def is_abnormal(reason: Any) -> bool:
    """True unless ``reason`` is ``"normal"``, ``"shutdown"`` or ``("shutdown", term)``."""
    if type(reason) is str:
        return reason not in ("normal", "shutdown")
    return not (type(reason) is tuple and len(reason) == 2 and reason[0] == "shutdown")


@dataclass(frozen=True)
class ChildSpec:
    """How to start and supervise one child, like an Erlang child spec map.

    Attributes:
        id: a non-empty string, unique among the supervisor's children.
        actor_class: the process class to start (an ``Actor``/``GenServer``/
            ``Supervisor`` subclass, or a sync ``anyotp.sync.GenServer``).
        args: positional arguments for the child's ``init``.
        kwargs: keyword arguments for the child's ``init``.
        restart: :class:`RestartType` (default ``PERMANENT``).
        shutdown: seconds the child gets to stop before it is killed,
            ``"brutal_kill"``, or ``None`` to wait forever; default 5.0 for workers and
            ``None`` for supervisors, as in OTP.
        type: ``"worker"`` or ``"supervisor"``; derived from ``actor_class`` by default.
        name: register each started instance under this name, like
            ``start(name=...)``: a non-empty str, ``Via(registry, key)`` or
            ``("via", registry, key)``; None (the default) for no name.  A restarted
            child takes the name again.  If the name cannot be registered when the
            child starts (taken, or its registry is not alive), that start fails like
            an ``init`` that raised: ``start_child`` raises ``SupervisorError``, and
            during a restart it is a failed restart, counted towards
            ``max_restarts`` and tried again.

    Raises:
        SupervisorError: ``id`` is empty or not a string, or ``actor_class`` is not a
            process class (the message names the value and the fix).
        TypeError: ``name`` is not None, a non-empty str or a via-name.
    """

    id: str
    actor_class: type[Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict[str, Any])
    restart: RestartType = RestartType.PERMANENT
    shutdown: Shutdown | Literal["default"] = "default"
    type: Literal["worker", "supervisor", "auto"] = "auto"
    name: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise SupervisorError(
                f"ChildSpec id must be a non-empty str, got {self.id!r}: give each child a "
                'unique name such as id="worker1"'
            )
        cls = self.actor_class
        if not (isinstance(cls, type) and issubclass(cls, Process)):
            raise SupervisorError(
                f"ChildSpec(id={self.id!r}): actor_class must be an Actor, GenServer or "
                f"Supervisor subclass (the class itself, not an instance), got {cls!r}"
            )
        if not isinstance(self.args, tuple):
            raise SupervisorError(
                f"ChildSpec(id={self.id!r}): args must be a tuple, got {self.args!r} "
                "(write args=(x,) for one argument)"
            )
        if not isinstance(self.kwargs, dict):
            raise SupervisorError(f"ChildSpec(id={self.id!r}): kwargs must be a dict")
        if self.type not in ("worker", "supervisor", "auto"):
            raise SupervisorError(
                f"ChildSpec(id={self.id!r}): type must be 'worker' or 'supervisor' (or left "
                f"out to derive it from actor_class), got {self.type!r}"
            )
        if not isinstance(self.restart, RestartType):
            raise SupervisorError(
                f"ChildSpec(id={self.id!r}): restart must be a RestartType, got {self.restart!r}"
            )
        _check_name(self.id, self.name)
        sd = self.shutdown
        if not (
            sd is None
            or sd in ("brutal_kill", "default")
            or (isinstance(sd, int | float) and not isinstance(sd, bool) and sd >= 0)
        ):
            raise SupervisorError(
                f"ChildSpec(id={self.id!r}): shutdown must be seconds >= 0, 'brutal_kill' "
                f"or None, got {sd!r}"
            )

    @property
    def child_type(self) -> Literal["worker", "supervisor"]:
        """``"supervisor"`` or ``"worker"``."""
        if self.type != "auto":
            return self.type
        return "supervisor" if issubclass(self.actor_class, _SupervisorBase) else "worker"

    @property
    def shutdown_timeout(self) -> Shutdown:
        """The effective shutdown: 5.0 s for workers, None (infinity) for supervisors."""
        if self.shutdown == "default":
            return None if self.child_type == "supervisor" else 5.0
        return self.shutdown


def _check_name(child_id: str, name: Any) -> None:
    """A ChildSpec ``name`` must be something ``start(name=...)`` can register."""
    if name is None or (type(name) is str and name) or type(name) is Via:
        return
    if type(name) is tuple and len(name) == 3 and name[0] == "via":
        return
    raise TypeError(
        f"ChildSpec(id={child_id!r}): name must be a non-empty str, Via(registry, key) or "
        f"('via', registry, key), got {type(name).__name__} {name!r} (write "
        f"name={str(name)!r} for a plain name, or leave name out)"
    )


async def _start_child(sup: Process, spec: ChildSpec) -> Process:
    """Start one child of ``sup`` (owned, linked, registered under ``spec.name``).

    A name that cannot be registered -- taken, its registry dead or not a registry --
    is a failed start like an ``init`` that raised, never a crash of the supervisor.

    Raises:
        StartError: ``init`` failed, or ``spec.name`` could not be registered (the
            registry's exception is chained and is the ``reason``).
    """
    proc: Process = spec.actor_class()
    try:
        await start_process(
            proc,
            spec.args,
            dict(spec.kwargs),
            sup._tg,
            owner=sup,
            link=True,
            shutdown=spec.shutdown_timeout,
            name=spec.name,
        )
    except StartError:
        raise
    except Exception as e:
        if spec.name is None:
            raise
        raise StartError(
            f"cannot start child {spec.id!r} ({spec.actor_class.__name__}) as {spec.name!r}: {e}",
            e,
        ) from e
    return proc


#: A supervisor's message to itself: try again to start children whose restart failed
#: (OTP's ``try_again_restart``): ``(_RETRY, [child, ...])``.
_RETRY = "$supervisor_retry"

ChildType = Literal["worker", "supervisor"]
_AnyClass = type[Any]


class ChildInfo(NamedTuple):
    """One row of :meth:`Supervisor.which_children`, like ``{Id, Child, Type, Modules}``."""

    id: str
    pid: PID | None  #: None when the child is not running
    type: ChildType
    actor_class: _AnyClass


class _Child:
    __slots__ = ("proc", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: Process | None = None


class _Reject:
    """A supervisor's answer to a bad request: the client raises SupervisorError."""

    __slots__ = ("cause", "message")

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        self.message = message
        self.cause = cause  #: chained as the SupervisorError's __cause__


_SUP = "$supervisor"


class _SupervisorBase(GenServer):
    """What every supervisor shares (Supervisor, DynamicSupervisor): it traps exits,
    and more than ``max_restarts`` restarts within ``max_seconds`` make it exit with
    ``"shutdown"`` (:meth:`_note_restart`).  Subclasses create ``_restarts``."""

    max_restarts: int = 3
    max_seconds: float = 5.0
    trap_exit = True
    _restarts: deque[float]

    def _note_restart(self) -> None:
        now = time.monotonic()
        window = self._restarts
        window.append(now)
        while window and window[0] < now - self.max_seconds:
            window.popleft()
        if len(window) > self.max_restarts:
            log.error(
                "%s %r reached its restart intensity (%d restarts in %s s); shutting down",
                type(self).__name__,
                self._pid,
                self.max_restarts,
                self.max_seconds,
            )
            self.stop("shutdown")


class Supervisor(_SupervisorBase):
    """Base supervisor: set ``strategy`` and override :meth:`child_specs`.

    Attributes:
        strategy: a :class:`RestartStrategy` (default ``ONE_FOR_ONE``).
        max_restarts: restarts allowed within ``max_seconds`` (default 3).
        max_seconds: the window for ``max_restarts``, in seconds (default 5.0).
    """

    strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE
    max_restarts: int = 3
    max_seconds: float = 5.0
    trap_exit = True

    def child_specs(self, *args: Any, **kwargs: Any) -> list[ChildSpec]:
        """Return the children to start, in start order.  Override it.

        It receives the arguments given to ``start``/``start_link`` (or a supervisor
        child's ``ChildSpec`` ``args``/``kwargs``, or ``anyotp.run(App, *args)``'s),
        without ``task_group`` and ``name``: ``await Pool.start(3, task_group=tg)``
        calls ``child_specs(3)``.  Like the argument of Elixir's ``Supervisor.init/1``.
        """
        return []

    # ------------------------------------------------------------------ server

    async def init(self, *args: Any, **kwargs: Any) -> Any:
        """Start the children that :meth:`child_specs` returns.

        Arguments given to ``start`` are passed on to ``child_specs`` (like the argument
        of Elixir's ``Supervisor.init/1`` callback); without any, it is called bare.
        """
        specs = self.child_specs(*args, **kwargs)
        if not isinstance(specs, list | tuple):
            raise SupervisorError(
                f"{type(self).__name__}.child_specs() must return a list of ChildSpec, "
                f"got {specs!r}"
            )
        self._kids: list[_Child] = []
        self._restarts: deque[float] = deque()
        seen: set[str] = set()
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise SupervisorError(
                    f"{type(self).__name__}.child_specs() returned {spec!r}; every item "
                    "must be a ChildSpec(id=..., actor_class=...)"
                )
            if spec.id in seen:
                raise SupervisorError(
                    f"{type(self).__name__}.child_specs(): duplicate child id {spec.id!r}; "
                    "ids must be unique"
                )
            seen.add(spec.id)
        for spec in specs:
            child = _Child(spec)
            self._kids.append(child)
            await self._start(child)
        return None

    async def _start(self, child: _Child) -> None:
        child.proc = await _start_child(self, child.spec)

    async def _stop(self, child: _Child) -> None:
        proc = child.proc
        if proc is None:
            return
        child.proc = None
        self._owned.pop(proc, None)
        await self._shutdown(proc, child.spec.shutdown_timeout)

    async def _stop_owned(self) -> None:
        # Reverse *spec* order, not reverse start order: a restarted child keeps its
        # place in the shutdown sequence (OTP stops children in reverse spec order).
        for child in reversed(getattr(self, "_kids", ())):
            await self._stop(child)
        await super()._stop_owned()

    def _find(self, child_id: str) -> _Child | None:
        for c in self._kids:
            if c.spec.id == child_id:
                return c
        return None

    async def handle_info(self, message: Any, state: Any) -> Any:
        if type(message) is tuple and len(message) == 3 and message[0] == "EXIT":
            pid = message[1]
            for child in self._kids:
                if child.proc is not None and child.proc._pid == pid:
                    await self._child_exited(child, message[2])
                    return state
            return state
        if type(message) is tuple and len(message) == 2 and message[0] == _RETRY:
            await self._start_group(message[1])
            return state
        return await super().handle_info(message, state)

    async def _child_exited(self, child: _Child, reason: Any) -> None:
        spec = child.spec
        proc = child.proc
        child.proc = None
        if proc is not None:
            self._owned.pop(proc, None)
        restart = spec.restart
        if restart is RestartType.TEMPORARY:
            self._kids.remove(child)
            return
        if restart is RestartType.TRANSIENT and not is_abnormal(reason):
            return
        log.info(
            "%s %r: child %r exited with %r; restarting",
            type(self).__name__,
            self._pid,
            spec.id,
            reason,
        )
        await self._restart(child)

    async def _restart(self, failed: _Child) -> None:
        self._note_restart()
        children = self._kids
        strategy = self.strategy
        if strategy is RestartStrategy.ONE_FOR_ONE:
            group = [failed]
        elif strategy is RestartStrategy.ONE_FOR_ALL:
            group = list(children)
        else:
            group = children[children.index(failed) :]
        for child in reversed(group):
            if child is not failed:
                await self._stop(child)
                if child.spec.restart is RestartType.TEMPORARY:
                    # OTP: a temporary child is never restarted, even when a sibling's
                    # restart stopped it; it is forgotten.
                    children.remove(child)
        await self._start_group(group)

    async def _start_group(self, group: list[_Child]) -> None:
        """Start, in order, the children of ``group`` that are not running.

        A child that fails to start counts as a restart; the rest of the group is
        tried again later, by a message to ourselves, as OTP's ``try_again_restart``:
        what is already in the mailbox (say, the EXIT of the registry the child's
        name needs, which is being restarted too) is handled first.
        """
        children = self._kids
        for i, child in enumerate(group):
            if child.proc is not None or child not in children:
                continue
            try:
                await self._start(child)
            except StartError as e:
                log.error(
                    "%s: restarting child %r failed: %r", type(self).__name__, child.spec.id, e
                )
                self._note_restart()  # exits with "shutdown" past the restart intensity
                self._mbox.put((_RETRY, group[i:]))
                return

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        if type(request) is not tuple or not request or request[0] != _SUP:
            return await super().handle_call(request, from_, state)
        op = request[1]
        if op == "which_children":
            rows = [
                ChildInfo(
                    c.spec.id,
                    c.proc._pid if c.proc else None,
                    c.spec.child_type,
                    c.spec.actor_class,
                )
                for c in self._kids
            ]
            return rows, state
        if op == "count_children":
            active = sum(1 for c in self._kids if c.proc is not None)
            sups = sum(1 for c in self._kids if c.spec.child_type == "supervisor")
            counts = {
                "specs": len(self._kids),
                "active": active,
                "supervisors": sups,
                "workers": len(self._kids) - sups,
            }
            return counts, state
        if op == "start_child":
            spec = request[2]
            if not isinstance(spec, ChildSpec):
                return _Reject(f"start_child() takes a ChildSpec, got {spec!r}"), state
            if self._find(spec.id) is not None:
                return _Reject(
                    f"start_child(): a child with id {spec.id!r} already exists; ids must be "
                    "unique (delete_child() it first, or pick another id)"
                ), state
            child = _Child(spec)
            try:
                await self._start(child)
            except StartError as e:
                return _Reject(f"start_child({spec.id!r}) failed: {e}", e), state
            self._kids.append(child)
            return child.proc.pid if child.proc else None, state
        child_id = request[2]
        found = self._find(child_id)
        if found is None:
            return _Reject(f"{op}(): no child with id {child_id!r} in {type(self).__name__}"), state
        child = found
        if op == "terminate_child":
            await self._stop(child)
            if child.spec.restart is RestartType.TEMPORARY:
                self._kids.remove(child)
            return None, state
        if op == "restart_child":
            if child.proc is not None:
                return _Reject(f"restart_child({child_id!r}): the child is running"), state
            try:
                await self._start(child)
            except StartError as e:
                return _Reject(f"restart_child({child_id!r}) failed: {e}", e), state
            return child.proc.pid if child.proc else None, state
        if op == "delete_child":
            if child.proc is not None:
                return _Reject(
                    f"delete_child({child_id!r}): the child is running; terminate_child() it first"
                ), state
            self._kids.remove(child)
            return None, state
        return _Reject(f"unknown supervisor request {op!r}"), state

    # -------------------------------------------------------------- client API

    @staticmethod
    async def _request(sup: PID | str, *request: Any, timeout: float | None) -> Any:
        got = await _call(sup, (_SUP, *request), timeout)
        if type(got) is _Reject:
            raise SupervisorError(got.message) from got.cause
        return got

    @staticmethod
    async def start_child(sup: PID | str, spec: ChildSpec, timeout: float | None = 5.0) -> PID:
        """Add ``spec`` to the running supervisor ``sup`` and start it; returns its PID.

        Like ``supervisor:start_child/2``.

        Raises:
            SupervisorError: the id is taken, or the child failed to start.
        """
        result: PID = await Supervisor._request(sup, "start_child", spec, timeout=timeout)
        return result

    @staticmethod
    async def terminate_child(sup: PID | str, child_id: str, timeout: float | None = None) -> None:
        """Stop the child ``child_id``, keeping its spec (temporary children are removed).

        Like ``supervisor:terminate_child/2``.

        Raises:
            SupervisorError: no such child.
        """
        await Supervisor._request(sup, "terminate_child", child_id, timeout=timeout)

    @staticmethod
    async def restart_child(sup: PID | str, child_id: str, timeout: float | None = 5.0) -> PID:
        """Start again a child that was stopped with :meth:`terminate_child`.

        Like ``supervisor:restart_child/2``.

        Raises:
            SupervisorError: no such child, it is running, or it failed to start.
        """
        result: PID = await Supervisor._request(sup, "restart_child", child_id, timeout=timeout)
        return result

    @staticmethod
    async def delete_child(sup: PID | str, child_id: str, timeout: float | None = 5.0) -> None:
        """Forget the spec of a stopped child; like ``supervisor:delete_child/2``.

        Raises:
            SupervisorError: no such child, or it is still running.
        """
        await Supervisor._request(sup, "delete_child", child_id, timeout=timeout)

    @staticmethod
    async def which_children(sup: PID | str, timeout: float | None = 5.0) -> list[ChildInfo]:
        """The supervisor's children, in start order; like ``supervisor:which_children/1``."""
        result: list[ChildInfo] = await Supervisor._request(sup, "which_children", timeout=timeout)
        return result

    @staticmethod
    async def count_children(sup: PID | str, timeout: float | None = 5.0) -> dict[str, int]:
        """Counts ``specs``, ``active``, ``supervisors``, ``workers``; like
        ``supervisor:count_children/1``."""
        result: dict[str, int] = await Supervisor._request(sup, "count_children", timeout=timeout)
        return result
