"""DynamicSupervisor: a supervisor whose children are started on demand.

What it is
    A :class:`~anyotp.Supervisor` knows its children up front (``child_specs()``); a
    :class:`DynamicSupervisor` starts with none and gets them at run time, one
    :meth:`DynamicSupervisor.start_child` at a time: one per connection, per job, per
    user session.  Like Elixir's ``DynamicSupervisor``.

Example::

    async with anyio.create_task_group() as tg:
        sup = await DynamicSupervisor.start(task_group=tg, max_children=1000)
        spec = ChildSpec(id="session", actor_class=Session, args=(user,),
                         restart=RestartType.TEMPORARY)
        pid = await DynamicSupervisor.start_child(sup, spec)
        ...
        await DynamicSupervisor.terminate_child(sup, pid)

Client / server split
    ``start_child``, ``terminate_child``, ``which_children`` and ``count_children`` are
    calls to the supervisor, so they are serialised: a child's ``init`` runs before the
    next request is handled.  Children are linked to the supervisor, which traps exits,
    and owned by it (shielded from outside cancellation, stopped by it).

Restarts
    The strategy is always one-for-one: only the child that exited restarts, according
    to its spec's ``restart`` (``PERMANENT``: always, ``TRANSIENT``: after an abnormal
    exit, ``TEMPORARY``: never, the child is forgotten).  ``ChildSpec`` defaults to
    ``PERMANENT``; Elixir's dynamic children are usually ``:temporary`` (a connection
    that died is not reopened by its supervisor), so say ``restart=TEMPORARY`` when
    that is what you mean.  A restarted child gets a new PID.  More than
    ``max_restarts`` restarts within ``max_seconds`` seconds make the supervisor stop
    every child and exit with ``"shutdown"``, like any supervisor.

Ids
    A child spec's ``id`` need not be unique here (Elixir ignores it); it is reported by
    ``which_children``.  Children are addressed by PID.

Exit
    On exit, children are stopped concurrently, as OTP does, each given its spec's
    ``shutdown`` seconds (reason ``"shutdown"``, ``terminate`` runs) before it is
    killed; the supervisor exits once all are dead.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from typing import Any

from . import _telemetry
from ._child_spec import (
    RETRY_TAG,
    ChildInfo,
    ChildSpec,
    RestartType,
    is_abnormal,
    start_child_process,
)
from ._child_spec import SUP_TAG as _SUP
from ._child_spec import Reject as _Reject
from ._child_spec import supervisor_request as _request
from ._core import PID, From, Proc, Target, Waiter, stop, stop_all
from ._exceptions import StartError, SupervisorError
from ._supervisor import _SupervisorBase

log = logging.getLogger("anyotp.supervisor")

__all__ = ["DynamicSupervisor"]


class _Unset(enum.Enum):
    UNSET = 0


_UNSET = _Unset.UNSET


class _Dyn:
    """A running dynamic child: its spec and its process."""

    __slots__ = ("proc", "spec")

    def __init__(self, spec: ChildSpec, proc: Proc) -> None:
        self.spec = spec
        self.proc = proc


class DynamicSupervisor(_SupervisorBase):
    """A supervisor that starts children on demand; like Elixir's ``DynamicSupervisor``.

    Use it as is (``await DynamicSupervisor.start(task_group=tg)``) or subclass it to
    set the class attributes.  ``start``'s keyword arguments ``max_children``,
    ``max_restarts`` and ``max_seconds`` override them for one instance, like the
    options of ``DynamicSupervisor.start_link/1``.

    Attributes:
        max_children: how many children may run at once; None (default) means no
            limit.  ``start_child`` beyond it raises :class:`~anyotp.SupervisorError`.
            Restarts do not count as new children.
        max_restarts: restarts allowed within ``max_seconds`` (default 3).
        max_seconds: the window for ``max_restarts``, in seconds (default 5.0).
    """

    max_children: int | None = None
    max_restarts: int = 3
    max_seconds: float = 5.0

    _otp_children: dict[PID, _Dyn]

    # ------------------------------------------------------------------ server

    async def _otp_boot(
        self, proc: Proc, args: tuple[Any, ...], kwargs: dict[str, Any], ack: Waiter
    ) -> Any:
        # Set up here, not in init, so that a subclass's init need not call super().
        self._otp_children = {}
        self._otp_restarts = deque()
        return await super()._otp_boot(proc, args, kwargs, ack)

    async def init(
        self,
        *,
        max_children: int | _Unset | None = _UNSET,
        max_restarts: int | _Unset = _UNSET,
        max_seconds: float | _Unset = _UNSET,
    ) -> Any:
        """Check the options; a subclass may override it (``super().init()`` optional).

        Args:
            max_children: overrides the class attribute for this instance.
            max_restarts: overrides the class attribute for this instance.
            max_seconds: overrides the class attribute for this instance.

        Raises:
            SupervisorError: an option is out of range (``start`` raises StartError).
        """
        name = type(self).__name__
        if max_children is not _UNSET:
            self.max_children = max_children
        if max_restarts is not _UNSET:
            self.max_restarts = max_restarts
        if max_seconds is not _UNSET:
            self.max_seconds = max_seconds
        mc = self.max_children
        if mc is not None and (not isinstance(mc, int) or isinstance(mc, bool) or mc < 0):
            raise SupervisorError(
                f"{name}: max_children must be an int >= 0 or None (no limit), got {mc!r}"
            )
        mr = self.max_restarts
        if not isinstance(mr, int) or isinstance(mr, bool) or mr < 0:
            raise SupervisorError(f"{name}: max_restarts must be an int >= 0, got {mr!r}")
        ms = self.max_seconds
        if not isinstance(ms, int | float) or isinstance(ms, bool) or ms <= 0:
            raise SupervisorError(f"{name}: max_seconds must be seconds > 0, got {ms!r}")
        return None

    async def _otp_start(self, spec: ChildSpec) -> PID:
        # A name it cannot register raises StartError, as a failed init does.
        proc = await start_child_process(self._otp_proc(), spec)
        # If it already exited, its EXIT is in our mailbox and handle_info sees it.
        self._otp_children[proc.pid] = _Dyn(spec, proc)
        return proc.pid

    async def _otp_stop_owned(self) -> None:
        # OTP stops a dynamic supervisor's children concurrently, each within its own
        # shutdown (a runtime hook, run before the core stops whatever else is owned).
        children = list(getattr(self, "_otp_children", {}).values())
        owned = self._otp_proc().owned
        for c in children:
            owned.pop(c.proc, None)
        await stop_all([(c.proc, c.spec.shutdown_timeout) for c in children])

    async def handle_info(self, message: Any, state: Any) -> Any:
        """A child's ``EXIT``: restart it by its restart type; a retry of a failed restart."""
        if type(message) is tuple and len(message) == 3 and message[0] == "EXIT":
            child = self._otp_children.pop(message[1], None)
            if child is not None:
                await self._otp_child_exited(child, message[2])
            return state
        if type(message) is tuple and len(message) == 2 and message[0] == RETRY_TAG:
            await self._otp_restart_spec(message[1])
            return state
        return await super().handle_info(message, state)

    async def _otp_child_exited(self, child: _Dyn, reason: Any) -> None:
        spec = child.spec
        restart = spec.restart
        if restart is RestartType.TEMPORARY or (
            restart is RestartType.TRANSIENT and not is_abnormal(reason)
        ):
            return
        log.info(
            "%s %r: child %r %r exited with %r; restarting",
            type(self).__name__,
            self.pid,
            spec.id,
            child.proc.pid,
            reason,
        )
        if _telemetry.enabled:
            _telemetry.emit_supervisor_restart(self, spec.id, child.proc.pid, reason)
        self._otp_note_restart()  # exits with "shutdown" past the restart intensity
        await self._otp_restart_spec(spec)

    async def _otp_restart_spec(self, spec: ChildSpec) -> None:
        """Start ``spec`` again; if that fails, count a restart and try again later
        by a message to ourselves (OTP's ``try_again_restart``), after what is
        already in the mailbox."""
        try:
            await self._otp_start(spec)
        except StartError as e:
            log.error("%s: restarting child %r failed: %r", type(self).__name__, spec.id, e)
            self._otp_note_restart()
            self._otp_proc().mbox.put((RETRY_TAG, spec))

    def _otp_describe(self) -> str:
        return f"{type(self).__name__} {self.pid!r}"

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        """Serve the supervisor requests (``start_child``, ``which_children``...)."""
        if type(request) is not tuple or not request or request[0] != _SUP:
            return await super().handle_call(request, from_, state)
        op = request[1]
        children = self._otp_children
        if op == "which_children":
            rows = [
                ChildInfo(c.spec.id, pid, c.spec.child_type, c.spec.actor_class)
                for pid, c in children.items()
            ]
            return rows, state
        if op == "count_children":
            sups = sum(1 for c in children.values() if c.spec.child_type == "supervisor")
            counts = {
                "specs": len(children),
                "active": len(children),
                "supervisors": sups,
                "workers": len(children) - sups,
            }
            return counts, state
        if op == "start_child":
            spec = request[2]
            if not isinstance(spec, ChildSpec):
                return _Reject(f"start_child() takes a ChildSpec, got {spec!r}"), state
            limit = self.max_children
            if limit is not None and len(children) >= limit:
                return _Reject(
                    f"start_child({spec.id!r}) on {self._otp_describe()} failed: max_children "
                    f"reached ({len(children)} children running, max_children={limit}); "
                    "terminate_child() one first, or raise max_children"
                ), state
            try:
                pid = await self._otp_start(spec)
            except StartError as e:
                return _Reject(
                    f"start_child({spec.id!r}) on {self._otp_describe()} failed: {e}", e
                ), (state)
            return pid, state
        if op == "terminate_child":
            pid = request[2]
            found = children.pop(pid, None) if type(pid) is PID else None
            if found is None:
                return _Reject(
                    f"terminate_child({pid!r}) on {self._otp_describe()} failed: {pid!r} is not a "
                    "child of it (it may have exited already; which_children() lists them)"
                ), state
            self._otp_proc().owned.pop(found.proc, None)
            await stop(found.proc, "shutdown", found.spec.shutdown_timeout)
            return None, state
        if op in ("restart_child", "delete_child"):
            return _Reject(
                f"{op}() is not supported by {self._otp_describe()}: a DynamicSupervisor keeps no "
                "specs of stopped children (start_child() a new one)"
            ), state
        return _Reject(f"unknown supervisor request {op!r} to {self._otp_describe()}"), state

    # -------------------------------------------------------------- client API

    @staticmethod
    async def start_child(sup: Target, spec: ChildSpec, /, *, timeout: float | None = 5.0) -> PID:
        """Start a child from ``spec`` under the running supervisor ``sup``.

        Like ``DynamicSupervisor.start_child/2``.  Returns once the child's ``init``
        returned.  The spec's ``id`` need not be unique.

        Args:
            sup: the supervisor's PID or registered name.
            spec: how to start and supervise the child.
            timeout: seconds to wait for the supervisor's answer (the child's ``init``
                included); None waits forever.

        Returns:
            The new child's PID.

        Raises:
            SupervisorError: ``spec`` is not a ChildSpec, ``max_children`` children are
                already running, or the child failed to start (its StartError is
                chained as ``__cause__``).
            CallError: ``sup`` is not alive (CallNoProc) or did not answer in time
                (CallTimeout).
        """
        if not isinstance(spec, ChildSpec):
            raise SupervisorError(
                f"DynamicSupervisor.start_child({sup!r}, {spec!r}): the second argument "
                "must be a ChildSpec, e.g. ChildSpec(id='worker', actor_class=Worker)"
            )
        result: PID = await _request(sup, "start_child", spec, timeout=timeout)
        return result

    @staticmethod
    async def terminate_child(sup: Target, pid: PID, /, *, timeout: float | None = None) -> None:
        """Stop the child ``pid`` and forget it (it is not restarted).

        Like ``DynamicSupervisor.terminate_child/2``: the child gets its spec's
        ``shutdown`` seconds to stop (``terminate`` runs), then it is killed.

        Args:
            sup: the supervisor's PID or registered name.
            pid: the child's PID, as returned by :meth:`start_child`.
            timeout: seconds to wait for the supervisor's answer; None (the default)
                waits forever, since stopping the child may take its shutdown time.

        Raises:
            SupervisorError: ``pid`` is not a child of ``sup`` (never was, or exited).
            CallError: ``sup`` is not alive or did not answer in time.
        """
        await _request(sup, "terminate_child", pid, timeout=timeout)

    @staticmethod
    async def which_children(sup: Target, /, *, timeout: float | None = 5.0) -> list[ChildInfo]:
        """The running children, oldest first; like ``DynamicSupervisor.which_children/1``.

        Each row is ``ChildInfo(id, pid, type, actor_class)``; ``id`` is the spec's id.

        Raises:
            CallError: ``sup`` is not alive or did not answer within ``timeout`` seconds.
        """
        result: list[ChildInfo] = await _request(sup, "which_children", timeout=timeout)
        return result

    @staticmethod
    async def count_children(sup: Target, /, *, timeout: float | None = 5.0) -> dict[str, int]:
        """Counts ``specs``, ``active``, ``supervisors`` and ``workers`` (running children).

        Like ``DynamicSupervisor.count_children/1``.

        Raises:
            CallError: ``sup`` is not alive or did not answer within ``timeout`` seconds.
        """
        result: dict[str, int] = await _request(sup, "count_children", timeout=timeout)
        return result
