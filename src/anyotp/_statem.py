"""StateMachine: a process that is in one state at a time, after Erlang's ``gen_statem``.

What it is
    A :class:`StateMachine` subclass implements ``init(*args) -> (state, data)`` and one
    callback, ``handle_event(event_type, content, state, data)`` (``gen_statem``'s
    *handle_event_function* mode).  Every input is an event: a call, a cast, any other
    message, a timeout, an internal event.  The callback returns what happens next.

Example, a door with a code::

    class Door(StateMachine):
        state_enter = True

        async def init(self, code):
            return "locked", {"code": code, "typed": ""}

        async def handle_event(self, event_type, content, state, data):
            match (event_type, content, state):
                case ("enter", _, "open"):
                    return KeepState(actions=[("state_timeout", 0.5, "lock")])
                case ("enter", _, _):
                    return KeepState()
                case (("call", from_), ("button", digit), "locked"):
                    typed = data["typed"] + digit
                    if typed == data["code"]:
                        return NextState("open", {**data, "typed": ""},
                                         [("reply", from_, "open")])
                    return KeepState({**data, "typed": typed}, [("reply", from_, "locked")])
                case ("state_timeout", "lock", "open"):
                    return NextState("locked", data)
                case (("call", from_), _, _):
                    return KeepState(actions=[("reply", from_, state)])
            return KeepState()

Event types (``event_type``)
    ``("call", from_)``: a :func:`~anyotp.call`; answer with a ``("reply", from_, value)``
    action.  ``"cast"``, ``"info"`` (anything sent), ``"state_timeout"``, ``"timeout"``
    (event timeout), ``("timeout", name)`` (generic timeout), ``"internal"`` (from a
    ``next_event`` action) and ``"enter"`` (state enter call: ``content`` is the old
    state; only when the class sets ``state_enter = True``).

Results
    ``(new_state, new_data)`` or ``(new_state, new_data, actions)``, or
    :class:`NextState`, :class:`KeepState`, :class:`RepeatState`, or
    :class:`~anyotp.Stop` (``Stop(reason, data, reply=...)``; ``reply`` goes to the
    caller of the current call event).  A state enter call may not change the state.

Actions (a list, applied in order)
    ``("reply", from_, value)``; ``"postpone"`` (retry this event after the next state
    change); ``("next_event", event_type, content)`` (handled before any new message);
    ``("state_timeout", seconds, content)`` (cancelled by a state change);
    ``("timeout", seconds, content)`` (cancelled by any event);
    ``(("timeout", name), seconds, content)`` (a generic timeout, cancelled only by
    setting it again with ``None`` seconds).  ``seconds=None`` cancels a timeout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias

from ._actor import Actor, check_callbacks
from ._core import (
    CALL,
    CAST,
    PARENT_EXIT,
    REDUCTIONS,
    SYSTEM,
    From,
    ProcessExit,
    decode,
    maybe_await,
)
from ._genserver import KEEP, NO_REPLY, Stop, wrong_kind
from ._timer import TimerRef, cancel_timer, send_after

__all__ = ["KeepState", "NextState", "RepeatState", "StateMachine"]

# PEP 696 defaults for type checkers only (the runtime needs typing_extensions for
# none of this): a plain subclass, ``class X(StateMachine)``, stays valid under
# ``mypy --strict`` and means ``StateMachine[Any, Any]``.
if TYPE_CHECKING:
    from typing_extensions import TypeVar
else:
    from typing import TypeVar

#: the type of a state machine's states: ``class Door(StateMachine[str, Data])``
if TYPE_CHECKING:
    S = TypeVar("S", default=Any)
else:
    S = TypeVar("S")
#: the type of a state machine's data
if TYPE_CHECKING:
    D = TypeVar("D", default=Any)
else:
    D = TypeVar("D")

_TIMEOUT_TAG = "$statem_timeout"
#: what _otp_translate returns for a system request (answered by the loop)
_SYSTEM_EVENT: tuple[Any, Any] = ("$system", None)
_MASK = REDUCTIONS - 1


class NextState(Generic[S, D]):
    """Go to ``state`` with ``data`` and run ``actions``; like ``{next_state, S, D, A}``."""

    __slots__ = ("actions", "data", "state")

    def __init__(self, state: S, data: D, actions: Sequence[Any] = ()) -> None:
        self.state: S = state
        self.data: D = data
        self.actions: Sequence[Any] = actions

    def __repr__(self) -> str:
        return f"NextState({self.state!r}, {self.data!r}, {list(self.actions)!r})"


class KeepState(Generic[D]):
    """Stay in the state; new ``data`` if given; run ``actions``; like ``keep_state``.

    ``KeepState()`` keeps the data too (``keep_state_and_data``).
    """

    __slots__ = ("actions", "data")

    def __init__(self, data: D = KEEP, actions: Sequence[Any] = ()) -> None:
        self.data: D = data
        self.actions: Sequence[Any] = actions

    def __repr__(self) -> str:
        return f"KeepState({self.data!r}, {list(self.actions)!r})"


class RepeatState(KeepState[D]):
    """Like :class:`KeepState`, but run the state enter call again and retry postponed
    events, as if the state had changed; like ``repeat_state``."""

    __slots__ = ()


#: What ``init`` returns: ``(state, data)`` or ``(state, data, actions)``.
InitResult: TypeAlias = tuple[S, D] | tuple[S, D, Sequence[Any]]
#: What ``handle_event`` returns (see the module docs).
EventResult: TypeAlias = (
    tuple[S, D] | tuple[S, D, Sequence[Any]] | NextState[S, D] | KeepState[D] | Stop
)


class StateMachine(Actor, Generic[S, D]):
    """Base class of state machines; see the module docs.

    Generic in its states and data: subclass ``StateMachine[str, dict[str, str]]``
    and the type checker checks what ``init`` and ``handle_event`` take and return.
    A plain ``StateMachine`` subclass is untyped.

    Attributes:
        state_enter: when True, ``handle_event("enter", old_state, state, data)`` runs
            on every state change and once after ``init`` (like ``state_enter``
            callback mode).
    """

    state_enter: bool = False
    _otp_sm_state: Any = None
    _otp_sm_data: Any = None

    async def init(self, *args: Any, **kwargs: Any) -> InitResult[S, D]:
        """Return ``(state, data)`` or ``(state, data, actions)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement init() -> (state, data)")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_callbacks(
            cls,
            {
                "handle_event": ("event_type, content, state, data", None),
                "terminate": ("reason, state", None),
            },
        )

    async def handle_event(
        self, event_type: Any, content: Any, state: S, data: D
    ) -> EventResult[S, D]:
        """Handle one event; return what happens next (see the module docs)."""
        raise NotImplementedError(
            f"{type(self).__name__} got event {event_type!r} {content!r} in state {state!r} "
            "but does not implement handle_event(event_type, content, state, data)"
        )

    async def run(self, state: Any) -> Any:
        """Not used: the state machine loop dispatches events to ``handle_event``."""
        raise NotImplementedError

    # -------------------------------------------------------------------- loop

    def _otp_check_init(self, result: Any) -> Any:
        if not (isinstance(result, tuple) and len(result) in (2, 3)):
            raise TypeError(
                f"{type(self).__name__}.init() returned {result!r}; it must return "
                "(state, data) or (state, data, actions)"
            )
        return result

    async def _otp_serve(self, init_result: Any) -> None:
        self._otp_queue: deque[tuple[Any, Any]] = deque()  # internal events, then postponed
        self._otp_postponed: list[tuple[Any, Any]] = []
        self._otp_timers: dict[Any, tuple[TimerRef, int]] = {}
        self._otp_timer_seq = 0
        self._otp_sm_state = init_result[0]
        self._otp_sm_data = init_result[1]
        self._otp_pcb_state()
        actions = init_result[2] if len(init_result) == 3 else ()
        # As in gen_statem: init's actions are the initial transition's actions, then
        # the initial state enter call runs.
        _, inserted, timers = self._otp_parse_actions(actions, allow_postpone=False)
        self._otp_insert(inserted)
        self._otp_set_timers(timers)
        if self.state_enter:
            await self._otp_enter(self._otp_sm_state, self._otp_sm_state)
        proc = self._otp_pcb
        assert proc is not None
        mbox = proc.mbox
        checkpoint = proc.loop.checkpoint
        while True:
            if self._otp_queue:
                event_type, content = self._otp_queue.popleft()
            else:
                msg = await mbox.get()
                proc.last_message = msg  # for a crash report
                event = self._otp_translate(msg)
                proc.reductions = r = proc.reductions + 1
                if not r & _MASK and checkpoint is not None:
                    await checkpoint()  # the reduction budget, as in the GenServer loop
                if event is None:
                    continue
                if event is _SYSTEM_EVENT:  # answered between events, not an event
                    await self._otp_system(msg[1], msg[2])
                    continue
                event_type, content = event
            if event_type != "timeout" and "timeout" in self._otp_timers:
                self._otp_cancel("timeout")  # any event cancels the event timeout
            await self._otp_handle(event_type, content)

    def _otp_pcb_state(self) -> None:
        proc = self._otp_pcb
        assert proc is not None
        proc.state = (self._otp_sm_state, self._otp_sm_data)

    def _otp_translate(self, msg: Any) -> tuple[Any, Any] | None:
        proc = self._otp_pcb
        assert proc is not None
        kind = decode(msg, proc.parent, self.trap_exit)
        if kind == CALL:
            return ("call", msg[1]), msg[2]
        if kind == CAST:
            return "cast", msg[1]
        if kind == PARENT_EXIT:
            raise ProcessExit(msg[2])
        if kind == SYSTEM:
            return _SYSTEM_EVENT
        if type(msg) is tuple:
            n = len(msg)
            if n == 4 and msg[0] == _TIMEOUT_TAG:
                _, key, seq, content = msg
                current = self._otp_timers.get(key)
                if current is None or current[1] != seq:
                    return None  # a timeout that was cancelled or reset after it fired
                del self._otp_timers[key]
                return ("timeout", key[1]) if type(key) is tuple else key, content
        return "info", msg

    async def _otp_system(self, from_: From, request: Any) -> None:
        """System requests between events: the state is ``(state, data)``."""
        op = request[0]
        if op == "get_state":
            from_.reply((self._otp_sm_state, self._otp_sm_data))
        elif op == "replace_state":
            try:
                new = await maybe_await(request[1]((self._otp_sm_state, self._otp_sm_data)))
                self._otp_sm_state, self._otp_sm_data = new
            except Exception as e:  # like sys:replace_state/2: the caller gets the error
                from_.fail(e)
                return
            self._otp_pcb_state()
            from_.reply(new)
        else:
            from_.fail(wrong_kind(self, request))

    async def _otp_handle(self, event_type: Any, content: Any) -> None:
        state = self._otp_sm_state
        res = await maybe_await(self.handle_event(event_type, content, state, self._otp_sm_data))
        from_ = event_type[1] if type(event_type) is tuple and event_type[0] == "call" else None
        if type(res) is tuple and len(res) in (2, 3):
            res = NextState(*res)
        if isinstance(res, Stop):
            if res.reply is not NO_REPLY and from_ is not None:
                from_.reply(res.reply)
            if res.state is not KEEP:
                self._otp_sm_data = res.state
                self._otp_pcb_state()
            raise ProcessExit(res.reason)
        if isinstance(res, NextState):
            new_state, actions = res.state, res.actions
            self._otp_sm_data = res.data
        elif isinstance(res, KeepState):
            new_state, actions = state, res.actions
            if res.data is not KEEP:
                self._otp_sm_data = res.data
        else:
            raise TypeError(
                f"{type(self).__name__}.handle_event({event_type!r}, {content!r}, {state!r}, "
                f"...) returned {res!r}; return (state, data[, actions]), NextState, "
                "KeepState, RepeatState or Stop"
            )
        postpone, inserted, timers = self._otp_parse_actions(actions, allow_postpone=True)
        if postpone:
            self._otp_postponed.append((event_type, content))
        changed = new_state != state
        self._otp_sm_state = new_state
        self._otp_pcb_state()
        # gen_statem's order: on a state change postponed events are retried (they go
        # to the front of the queue) and the old state's state timeout is cancelled;
        # then next_event events are inserted before everything; then this
        # transition's timeouts start; then the state enter call runs.
        again = changed or isinstance(res, RepeatState)
        if again:
            if self._otp_postponed:
                self._otp_queue.extendleft(reversed(self._otp_postponed))
                self._otp_postponed = []
            if changed and "state_timeout" in self._otp_timers:
                self._otp_cancel("state_timeout")
        self._otp_insert(inserted)
        self._otp_set_timers(timers)
        if again and self.state_enter:
            await self._otp_enter(state, new_state)

    async def _otp_enter(self, old_state: Any, state: Any) -> None:
        res = await maybe_await(self.handle_event("enter", old_state, state, self._otp_sm_data))
        if isinstance(res, Stop):
            if res.state is not KEEP:
                self._otp_sm_data = res.state
            raise ProcessExit(res.reason)
        if type(res) is tuple and len(res) in (2, 3):
            res = NextState(*res)
        if isinstance(res, NextState) and res.state != state:
            raise TypeError(
                f"{type(self).__name__}: a state enter call must not change the state "
                f"(returned {res!r} in state {state!r}); use KeepState"
            )
        if isinstance(res, NextState | KeepState):
            if res.data is not KEEP:
                self._otp_sm_data = res.data
            self._otp_pcb_state()
            _, inserted, timers = self._otp_parse_actions(res.actions, allow_postpone=False)
            if inserted:
                raise TypeError(
                    f"{type(self).__name__}: 'next_event' is not allowed in a state enter "
                    "call (as in gen_statem)"
                )
            self._otp_set_timers(timers)
            return
        raise TypeError(
            f"{type(self).__name__}.handle_event('enter', ...) returned {res!r}; return "
            "KeepState(...) or Stop(...)"
        )

    def _otp_parse_actions(
        self, actions: Sequence[Any], *, allow_postpone: bool
    ) -> tuple[bool, list[tuple[Any, Any]], list[tuple[Any, Any, Any]]]:
        """Send the replies; return (postpone?, next_events, timeouts) to apply in order."""
        postpone = False
        inserted: list[tuple[Any, Any]] = []
        timers: list[tuple[Any, Any, Any]] = []
        for action in actions:
            if action == "postpone":
                if not allow_postpone:
                    raise TypeError(
                        f"{type(self).__name__}: 'postpone' is only allowed while handling "
                        "an event (not in init or a state enter call)"
                    )
                postpone = True
                continue
            if type(action) is not tuple or not action:
                raise TypeError(f"{type(self).__name__}: unknown action {action!r}")
            kind = action[0]
            if kind == "reply" and len(action) == 3:
                frm = action[1]
                if not isinstance(frm, From):
                    raise TypeError(f"reply action needs the caller's From, got {frm!r}")
                frm.reply(action[2])
            elif kind == "next_event" and len(action) == 3:
                inserted.append((action[1], action[2]))
            elif len(action) == 3 and (
                kind in ("state_timeout", "timeout")
                or (type(kind) is tuple and len(kind) == 2 and kind[0] == "timeout")
            ):
                timers.append(action)
            else:
                raise TypeError(
                    f"{type(self).__name__}: unknown action {action!r}; see StateMachine docs"
                )
        return postpone, inserted, timers

    def _otp_insert(self, inserted: list[tuple[Any, Any]]) -> None:
        """next_event: before queued and postponed events, in action order."""
        if inserted:
            self._otp_queue.extendleft(reversed(inserted))

    def _otp_set_timers(self, timers: list[tuple[Any, Any, Any]]) -> None:
        for key, seconds, content in timers:
            self._otp_set_timer(key, seconds, content)

    def _otp_set_timer(self, key: Any, seconds: float | None, content: Any) -> None:
        self._otp_cancel(key)
        if seconds is None:
            return
        self._otp_timer_seq += 1
        seq = self._otp_timer_seq
        ref = send_after(self.pid, (_TIMEOUT_TAG, key, seq, content), seconds)
        self._otp_timers[key] = (ref, seq)

    def _otp_cancel(self, key: Any) -> None:
        entry = self._otp_timers.pop(key, None)
        if entry is not None:
            cancel_timer(entry[0])

    @property
    def current_state(self) -> Any:
        """The machine's current state (for introspection and tests)."""
        return self._otp_sm_state
