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
import logging
import time
from collections import deque
from typing import Any, ClassVar

from . import _telemetry
from ._actor import task_group_target
from ._child_spec import (
    RETRY_TAG,
    ChildInfo,
    ChildSpec,
    RestartType,
    is_abnormal,
    start_child_process,
    supervisor_request,
)
from ._child_spec import SUP_TAG as _SUP
from ._child_spec import Reject as _Reject
from ._core import PID, From, Proc, Target, spawn, stop
from ._exceptions import StartError, SupervisorError
from ._genserver import GenServer

log = logging.getLogger("anyotp.supervisor")

__all__ = ["ChildInfo", "ChildSpec", "RestartStrategy", "RestartType", "Supervisor"]


class RestartStrategy(enum.Enum):
    """Which children restart when one exits (``supervisor`` strategies)."""

    ONE_FOR_ONE = "one_for_one"  #: only the child that exited
    ONE_FOR_ALL = "one_for_all"  #: every child
    REST_FOR_ONE = "rest_for_one"  #: the child and those started after it


class _Child:
    __slots__ = ("proc", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: Proc | None = None


class _SupervisorBase(GenServer[Any]):
    """What every supervisor shares (Supervisor, DynamicSupervisor): it traps exits,
    and more than ``max_restarts`` restarts within ``max_seconds`` make it exit with
    ``"shutdown"`` (:meth:`_note_restart`).  Subclasses create ``_restarts``."""

    max_restarts: int = 3
    max_seconds: float = 5.0
    trap_exit = True
    #: marks supervisors (a ChildSpec's type defaults to "supervisor" for them)
    _otp_supervisor = True
    _otp_requests: ClassVar[dict[str, str]] = {_SUP: "_otp_sup_request"}

    async def _otp_sup_request(self, from_: From, request: Any, state: Any) -> Any:
        """A supervisor request (``which_children``, ``start_child``...), served by
        ``handle_call`` between messages."""
        result: Any = await self.handle_call(request, from_, state)  # (reply, state)
        reply, state = result
        from_.reply(reply)
        return state

    _otp_restarts: deque[float]

    def _otp_note_restart(self) -> None:
        now = time.monotonic()
        window = self._otp_restarts
        window.append(now)
        while window and window[0] < now - self.max_seconds:
            window.popleft()
        if len(window) > self.max_restarts:
            log.error(
                "%s %r reached its restart intensity (%d restarts in %s s); shutting down",
                type(self).__name__,
                self.pid,
                self.max_restarts,
                self.max_seconds,
            )
            if _telemetry.enabled:
                _telemetry.emit_supervisor_shutdown(self, len(window))
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
    #: the children given to ``start_link([...])`` (the form without a subclass)
    _otp_children: tuple[ChildSpec, ...] = ()

    def child_specs(self, *args: Any, **kwargs: Any) -> list[ChildSpec]:
        """Return the children to start, in start order.  Override it.

        It receives the arguments given to ``start``/``start_link`` (or a supervisor
        child's ``ChildSpec`` ``args``/``kwargs``, or ``anyotp.run(App, *args)``'s),
        without ``task_group`` and ``name``: ``await Pool.start(3, task_group=tg)``
        calls ``child_specs(3)``.  Like the argument of Elixir's ``Supervisor.init/1``.
        Not overridden, it returns the children given to
        ``Supervisor.start_link([...])``.
        """
        return list(self._otp_children)

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
        self._otp_kids: list[_Child] = []
        self._otp_restarts: deque[float] = deque()
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
            self._otp_kids.append(child)
            await self._otp_start(child)
        return None

    async def _otp_start(self, child: _Child) -> None:
        child.proc = await start_child_process(self._otp_proc(), child.spec)

    async def _otp_stop(self, child: _Child) -> None:
        proc = child.proc
        if proc is None:
            return
        child.proc = None
        self._otp_proc().owned.pop(proc, None)
        await stop(proc, "shutdown", child.spec.shutdown_timeout)

    async def _otp_stop_owned(self) -> None:
        # Reverse *spec* order, not reverse start order: a restarted child keeps its
        # place in the shutdown sequence (OTP stops children in reverse spec order).
        # (A runtime hook: called before the core stops whatever else is owned.)
        for child in reversed(getattr(self, "_otp_kids", ())):
            await self._otp_stop(child)

    def _otp_find(self, child_id: str) -> _Child | None:
        for c in self._otp_kids:
            if c.spec.id == child_id:
                return c
        return None

    async def handle_info(self, message: Any, state: Any) -> Any:
        """A child's ``EXIT``: restart by the strategy; a retry of a failed restart."""
        if type(message) is tuple and len(message) == 3 and message[0] == "EXIT":
            pid = message[1]
            for child in self._otp_kids:
                if child.proc is not None and child.proc.pid == pid:
                    await self._otp_child_exited(child, message[2])
                    return state
            return state
        if type(message) is tuple and len(message) == 2 and message[0] == RETRY_TAG:
            await self._otp_start_group(message[1])
            return state
        return await super().handle_info(message, state)

    async def _otp_child_exited(self, child: _Child, reason: Any) -> None:
        spec = child.spec
        proc = child.proc
        child.proc = None
        if proc is not None:
            self._otp_proc().owned.pop(proc, None)
        restart = spec.restart
        if restart is RestartType.TEMPORARY:
            self._otp_kids.remove(child)
            return
        if restart is RestartType.TRANSIENT and not is_abnormal(reason):
            return
        log.info(
            "%s %r: child %r exited with %r; restarting",
            type(self).__name__,
            self.pid,
            spec.id,
            reason,
        )
        if _telemetry.enabled:
            _telemetry.emit_supervisor_restart(self, spec.id, proc.pid if proc else None, reason)
        await self._otp_restart(child)

    async def _otp_restart(self, failed: _Child) -> None:
        self._otp_note_restart()
        children = self._otp_kids
        strategy = self.strategy
        if strategy is RestartStrategy.ONE_FOR_ONE:
            group = [failed]
        elif strategy is RestartStrategy.ONE_FOR_ALL:
            group = list(children)
        else:
            group = children[children.index(failed) :]
        for child in reversed(group):
            if child is not failed:
                await self._otp_stop(child)
                if child.spec.restart is RestartType.TEMPORARY:
                    # OTP: a temporary child is never restarted, even when a sibling's
                    # restart stopped it; it is forgotten.
                    children.remove(child)
        await self._otp_start_group(group)

    async def _otp_start_group(self, group: list[_Child]) -> None:
        """Start, in order, the children of ``group`` that are not running.

        A child that fails to start counts as a restart; the rest of the group is
        tried again later, by a message to ourselves, as OTP's ``try_again_restart``:
        what is already in the mailbox (say, the EXIT of the registry the child's
        name needs, which is being restarted too) is handled first.
        """
        children = self._otp_kids
        for i, child in enumerate(group):
            if child.proc is not None or child not in children:
                continue
            try:
                await self._otp_start(child)
            except StartError as e:
                log.error(
                    "%s: restarting child %r failed: %r", type(self).__name__, child.spec.id, e
                )
                self._otp_note_restart()  # exits with "shutdown" past the restart intensity
                self._otp_proc().mbox.put((RETRY_TAG, group[i:]))
                return

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        """Serve the supervisor requests (``start_child``, ``which_children``...)."""
        if type(request) is not tuple or not request or request[0] != _SUP:
            return await super().handle_call(request, from_, state)
        op = request[1]
        if op == "which_children":
            rows = [
                ChildInfo(
                    c.spec.id,
                    c.proc.pid if c.proc else None,
                    c.spec.child_type,
                    c.spec.actor_class,
                )
                for c in self._otp_kids
            ]
            return rows, state
        if op == "count_children":
            active = sum(1 for c in self._otp_kids if c.proc is not None)
            sups = sum(1 for c in self._otp_kids if c.spec.child_type == "supervisor")
            counts = {
                "specs": len(self._otp_kids),
                "active": active,
                "supervisors": sups,
                "workers": len(self._otp_kids) - sups,
            }
            return counts, state
        if op == "start_child":
            spec = request[2]
            if not isinstance(spec, ChildSpec):
                return _Reject(f"start_child() takes a ChildSpec, got {spec!r}"), state
            if self._otp_find(spec.id) is not None:
                return _Reject(
                    f"start_child(): a child with id {spec.id!r} already exists; ids must be "
                    "unique (delete_child() it first, or pick another id)"
                ), state
            child = _Child(spec)
            try:
                await self._otp_start(child)
            except StartError as e:
                return _Reject(f"start_child({spec.id!r}) failed: {e}", e), state
            self._otp_kids.append(child)
            return child.proc.pid if child.proc else None, state
        child_id = request[2]
        found = self._otp_find(child_id)
        if found is None:
            return _Reject(f"{op}(): no child with id {child_id!r} in {type(self).__name__}"), state
        child = found
        if op == "terminate_child":
            await self._otp_stop(child)
            if child.spec.restart is RestartType.TEMPORARY:
                self._otp_kids.remove(child)
            return None, state
        if op == "restart_child":
            if child.proc is not None:
                return _Reject(f"restart_child({child_id!r}): the child is running"), state
            try:
                await self._otp_start(child)
            except StartError as e:
                return _Reject(f"restart_child({child_id!r}) failed: {e}", e), state
            return child.proc.pid if child.proc else None, state
        if op == "delete_child":
            if child.proc is not None:
                return _Reject(
                    f"delete_child({child_id!r}): the child is running; terminate_child() it first"
                ), state
            self._otp_kids.remove(child)
            return None, state
        return _Reject(f"unknown supervisor request {op!r}"), state

    # -------------------------------------------------------------- client API

    _otp_request = staticmethod(supervisor_request)

    @staticmethod
    async def start_child(sup: Target, spec: ChildSpec, timeout: float | None = 5.0) -> PID:
        """Add ``spec`` to the running supervisor ``sup`` and start it; returns its PID.

        Like ``supervisor:start_child/2``.

        Raises:
            SupervisorError: the id is taken, or the child failed to start.
        """
        result: PID = await Supervisor._otp_request(sup, "start_child", spec, timeout=timeout)
        return result

    @staticmethod
    async def terminate_child(sup: Target, child_id: str, timeout: float | None = None) -> None:
        """Stop the child ``child_id``, keeping its spec (temporary children are removed).

        Like ``supervisor:terminate_child/2``.

        Raises:
            SupervisorError: no such child.
        """
        await Supervisor._otp_request(sup, "terminate_child", child_id, timeout=timeout)

    @staticmethod
    async def restart_child(sup: Target, child_id: str, timeout: float | None = 5.0) -> PID:
        """Start again a child that was stopped with :meth:`terminate_child`.

        Like ``supervisor:restart_child/2``.

        Raises:
            SupervisorError: no such child, it is running, or it failed to start.
        """
        result: PID = await Supervisor._otp_request(sup, "restart_child", child_id, timeout=timeout)
        return result

    @staticmethod
    async def delete_child(sup: Target, child_id: str, timeout: float | None = 5.0) -> None:
        """Forget the spec of a stopped child; like ``supervisor:delete_child/2``.

        Raises:
            SupervisorError: no such child, or it is still running.
        """
        await Supervisor._otp_request(sup, "delete_child", child_id, timeout=timeout)

    @staticmethod
    async def which_children(sup: Target, timeout: float | None = 5.0) -> list[ChildInfo]:
        """The supervisor's children, in start order; like ``supervisor:which_children/1``."""
        result: list[ChildInfo] = await Supervisor._otp_request(
            sup, "which_children", timeout=timeout
        )
        return result

    @staticmethod
    async def count_children(sup: Target, timeout: float | None = 5.0) -> dict[str, int]:
        """Counts ``specs``, ``active``, ``supervisors``, ``workers``; like
        ``supervisor:count_children/1``."""
        result: dict[str, int] = await Supervisor._otp_request(
            sup, "count_children", timeout=timeout
        )
        return result

    # ------------------------------------------------- starting without a subclass

    @classmethod
    async def start(
        cls, *args: Any, task_group: Any = None, name: Any = None, **kwargs: Any
    ) -> PID:
        """Start a supervisor; return its PID once every child started.

        Two forms, told apart by the arguments:

        * ``await Supervisor.start([child, ...], strategy=..., max_restarts=3,
          max_seconds=5.0, task_group=tg, name=None)``: one positional argument, a
          *list* of children, on a class that does not override :meth:`child_specs`
          (``Supervisor`` itself): like Elixir's ``Supervisor.start_link(children,
          opts)``.  A child is a :class:`ChildSpec`, a process class, or
          ``(Class, arg)``; a class may describe itself with a ``child_spec``
          classmethod (called as ``Class.child_spec()`` for a bare class,
          ``Class.child_spec(arg)`` for a pair); without one a class becomes
          ``ChildSpec(id=Class.__name__, actor_class=Class, args=(arg,) or ())``.
        * otherwise, the subclass form: ``*args``/``**kwargs`` go to ``init`` and on to
          :meth:`child_specs` (a subclass's ``strategy`` and limits are its class
          attributes).

        Args:
            *args: the children list, or arguments for ``child_specs``.
            task_group: an anyio TaskGroup, or ``self.children`` of a running actor.
            name: register the supervisor under this name (a str or a via-name).
            **kwargs: with a children list: ``strategy`` (a :class:`RestartStrategy`,
                default ``ONE_FOR_ONE``), ``max_restarts`` (default 3) and
                ``max_seconds`` (seconds, default 5.0); else passed to ``init``.

        Raises:
            SupervisorError: a child is not a ChildSpec, a process class or a
                ``(Class, arg)`` pair, or an option has a bad value.
            TypeError: no ``task_group``, an unknown option, or arguments given to a
                class that does not override ``child_specs`` other than one list.
            StartError: a child failed to start (chained), or ids are duplicated.
        """
        body = _with_children(cls, args, kwargs, "start")
        if body is None:
            return await super().start(*args, task_group=task_group, name=name, **kwargs)
        tg, owner = task_group_target(cls.__name__, task_group)
        return await spawn(body, (), {}, tg, owner=owner, name=name)

    @classmethod
    async def start_link(
        cls, *args: Any, task_group: Any = None, name: Any = None, **kwargs: Any
    ) -> PID:
        """Like :meth:`start` (both forms), and link the supervisor to the caller.

        Like ``supervisor:start_link/2`` and Elixir's ``Supervisor.start_link/2``.

        Raises:
            NotInProcess: called outside a process (there is nothing to link to).
        """
        body = _with_children(cls, args, kwargs, "start_link")
        if body is None:
            return await super().start_link(*args, task_group=task_group, name=name, **kwargs)
        tg, owner = task_group_target(cls.__name__, task_group)
        return await spawn(body, (), {}, tg, owner=owner, link=True, name=name)


_OPTIONS = ("strategy", "max_restarts", "max_seconds")


def _with_children(
    cls: type[Supervisor], args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> Supervisor | None:
    """A supervisor body for the children-list form, or None for the subclass form."""
    if cls.child_specs is not Supervisor.child_specs:
        return None  # a subclass that lists its own children: args go to child_specs
    if not args and not kwargs:
        return None  # no children at all: the subclass form with no arguments
    if len(args) != 1 or not isinstance(args[0], list):
        raise TypeError(
            f"{cls.__name__}.{what}() takes a list of children, as "
            f"`{cls.__name__}.{what}([Worker, (Cache, 10)], strategy=..., task_group=tg)`, "
            f"got {args!r}; or subclass it and override child_specs()"
        )
    unknown = sorted(set(kwargs) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"{cls.__name__}.{what}(): unknown option(s) {', '.join(unknown)}; the options "
            f"are {', '.join(_OPTIONS)}, task_group and name"
        )
    strategy = kwargs.get("strategy", cls.strategy)
    if not isinstance(strategy, RestartStrategy):
        raise SupervisorError(
            f"{cls.__name__}.{what}(strategy={strategy!r}): give a RestartStrategy, e.g. "
            "RestartStrategy.ONE_FOR_ONE"
        )
    max_restarts = kwargs.get("max_restarts", cls.max_restarts)
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise SupervisorError(
            f"{cls.__name__}.{what}(max_restarts={max_restarts!r}): give an int >= 0"
        )
    max_seconds = kwargs.get("max_seconds", cls.max_seconds)
    if (
        not isinstance(max_seconds, int | float)
        or isinstance(max_seconds, bool)
        or max_seconds <= 0
    ):
        raise SupervisorError(
            f"{cls.__name__}.{what}(max_seconds={max_seconds!r}): give seconds > 0"
        )
    body = cls()
    body.strategy = strategy
    body.max_restarts = max_restarts
    body.max_seconds = float(max_seconds)
    body._otp_children = tuple(child_spec_of(child) for child in args[0])
    return body


def child_spec_of(child: Any) -> ChildSpec:
    """The :class:`ChildSpec` a child of ``Supervisor.start_link([...])`` stands for.

    Like Elixir's ``Supervisor.child_spec/2`` normalisation: a ``ChildSpec`` as is; a
    process class or ``(Class, arg)`` through ``Class.child_spec()`` /
    ``Class.child_spec(arg)`` when the class defines it, else
    ``ChildSpec(id=Class.__name__, actor_class=Class, args=() or (arg,))``.

    Raises:
        SupervisorError: ``child`` is none of those, or ``child_spec`` did not return
            a ChildSpec.
    """
    if isinstance(child, ChildSpec):
        return child
    if isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], type):
        cls, arg = child
        given: tuple[Any, ...] = (arg,)
    elif isinstance(child, type):
        cls, given = child, ()
    else:
        raise SupervisorError(
            f"a child must be a ChildSpec, a process class or a (Class, arg) pair, got "
            f"{type(child).__name__} {child!r}"
        )
    describe = getattr(cls, "child_spec", None)
    if describe is None:
        return ChildSpec(id=cls.__name__, actor_class=cls, args=given)
    spec = describe(*given)
    if not isinstance(spec, ChildSpec):
        raise SupervisorError(
            f"{cls.__name__}.child_spec({', '.join(map(repr, given))}) returned {spec!r}; "
            "it must return a ChildSpec"
        )
    return spec
