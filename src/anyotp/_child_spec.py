"""Child specs and the supervisor request protocol (below every behaviour that
starts children: Task streams, Supervisor, DynamicSupervisor, TaskSupervisor)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ._core import (
    PID,
    SYSTEM_TAG,
    Proc,
    Shutdown,
    Target,
    Via,
    gen_call,
    is_process_class,
    spawn,
)
from ._exceptions import StartError, SupervisorError

__all__ = [
    "RETRY_TAG",
    "SUP_TAG",
    "ChildInfo",
    "ChildSpec",
    "Reject",
    "RestartType",
    "is_abnormal",
    "start_child_process",
    "supervisor_request",
]


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
        log_crashes: False keeps the child's crashes out of the log (expected
            failures: the supervisor still restarts it).

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
    log_crashes: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise SupervisorError(
                f"ChildSpec id must be a non-empty str, got {self.id!r}: give each child a "
                'unique name such as id="worker1"'
            )
        cls = self.actor_class
        if not (isinstance(cls, type) and is_process_class(cls)):
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
        return "supervisor" if getattr(self.actor_class, "_otp_supervisor", False) else "worker"

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


async def start_child_process(sup: Proc, spec: ChildSpec) -> Proc:
    """Start one child of the supervisor ``sup``: owned, linked, registered under
    ``spec.name``.  Every supervisor starts its children here.

    A name that cannot be registered -- taken, its registry dead or not a registry --
    is a failed start like an ``init`` that raised, never a crash of the supervisor.

    Raises:
        StartError: ``init`` failed, or ``spec.name`` could not be registered (the
            registry's exception is chained and is the ``reason``).
    """
    body = spec.actor_class()
    try:
        await spawn(
            body,
            spec.args,
            dict(spec.kwargs),
            sup.tg,
            owner=sup,
            link=True,
            shutdown=spec.shutdown_timeout,
            name=spec.name,
            log_crashes=spec.log_crashes,
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
    proc: Proc = body._otp_pcb
    return proc


#: A supervisor's message to itself: try again to start children whose restart failed
#: (OTP's ``try_again_restart``): ``(RETRY_TAG, what)``.
RETRY_TAG = "$supervisor_retry"

ChildType = Literal["worker", "supervisor"]
_AnyClass = type[Any]


class ChildInfo(NamedTuple):
    """One row of :meth:`Supervisor.which_children`, like ``{Id, Child, Type, Modules}``."""

    id: str
    pid: PID | None  #: None when the child is not running
    type: ChildType
    actor_class: _AnyClass


class Reject:
    """A supervisor's answer to a bad request: the client raises SupervisorError."""

    __slots__ = ("cause", "message")

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        self.message = message
        self.cause = cause  #: chained as the SupervisorError's __cause__


#: Head of a supervisor request: ``call(sup, (SUP_TAG, op, *args))``.
SUP_TAG = "$supervisor"


async def supervisor_request(sup: Target, *request: Any, timeout: float | None) -> Any:
    """Ask the supervisor ``sup`` for ``request``; like ``supervisor:call/2``.

    Raises:
        SupervisorError: the supervisor refused (the message says why).
        CallError: ``sup`` is not alive or did not answer in time.
    """
    # Through the system channel (as sys requests): a process that is not a
    # supervisor answers with a clear error instead of treating it as its own call.
    got = await gen_call(sup, SYSTEM_TAG, (SUP_TAG, *request), timeout)
    if type(got) is Reject:
        raise SupervisorError(got.message) from got.cause
    return got
