"""anyotp: Erlang/OTP for Python, on AnyIO (asyncio and trio).

Layering (a lower layer never imports a higher one; tests/test_layers.py checks it)::

    _exceptions, _telemetry  <-  _core (the sealed runtime: see _core/__init__.py)
                 <-  _actor  <-  _spawn, _child_spec  <-  _task  <-  _genserver
                 <-  _timer  <-  _agent, _statem, _registry, _introspection
                 <-  _supervisor  <-  _dynamic_supervisor  <-  _task_supervisor
                 <-  sync (thread API, its loop_thread), testing, telemetry
                 <-  observer (optional extra)  <-  _application

This module only re-exports the public names.
"""

from typing import Any as _Any
from typing import Final as _Final

from ._actor import Actor as Actor
from ._actor import ActorHandle as ActorHandle
from ._agent import Agent as Agent
from ._application import run as run
from ._core import ANY as ANY
from ._core import IGNORE as IGNORE
from ._core import PID as PID
from ._core import ChildTasks as ChildTasks
from ._core import From as From
from ._core import Ref as Ref
from ._core import Status as Status
from ._core import Target as Target
from ._core import Via as Via
from ._core import ViaRegistry as ViaRegistry
from ._core import call as call
from ._core import cast as cast
from ._core import cast_nowait as cast_nowait
from ._core import demonitor as demonitor
from ._core import exit_process as exit_process
from ._core import is_alive as is_alive
from ._core import link as link
from ._core import make_ref as make_ref
from ._core import match as match
from ._core import monitor as monitor
from ._core import processes as processes
from ._core import register as register
from ._core import registered as registered
from ._core import self_pid as self_pid
from ._core import send as send
from ._core import send_nowait as send_nowait
from ._core import unlink as unlink
from ._core import unregister as unregister
from ._core import whereis as whereis
from ._dynamic_supervisor import DynamicSupervisor as DynamicSupervisor
from ._exceptions import CallError as CallError
from ._exceptions import CallExit as CallExit
from ._exceptions import CallNoProc as CallNoProc
from ._exceptions import CallTimeout as CallTimeout
from ._exceptions import ExitError as ExitError
from ._exceptions import GenServerError as GenServerError
from ._exceptions import GenServerTimeoutError as GenServerTimeoutError
from ._exceptions import InvalidPattern as InvalidPattern
from ._exceptions import NoProcess as NoProcess
from ._exceptions import NotInProcess as NotInProcess
from ._exceptions import OTPError as OTPError
from ._exceptions import ReceiveTimeout as ReceiveTimeout
from ._exceptions import StartError as StartError
from ._exceptions import SupervisorError as SupervisorError
from ._exceptions import TaskTimeout as TaskTimeout
from ._genserver import Continue as Continue
from ._genserver import Directive as Directive
from ._genserver import GenServer as GenServer
from ._genserver import NoReply as NoReply
from ._genserver import Reply as Reply
from ._genserver import Stop as Stop
from ._genserver import abcast as abcast
from ._genserver import multi_call as multi_call
from ._genserver import reply as reply
from ._introspection import TreeNode as TreeNode
from ._introspection import format_tree as format_tree
from ._introspection import get_state as get_state
from ._introspection import process_info as process_info
from ._introspection import replace_state as replace_state
from ._introspection import supervision_tree as supervision_tree
from ._registry import Registry as Registry
from ._spawn import process_flag as process_flag
from ._spawn import receive as receive
from ._spawn import spawn as spawn
from ._spawn import spawn_link as spawn_link
from ._spawn import spawn_monitor as spawn_monitor
from ._statem import KeepState as KeepState
from ._statem import NextState as NextState
from ._statem import RepeatState as RepeatState
from ._statem import StateMachine as StateMachine
from ._supervisor import ChildInfo as ChildInfo
from ._supervisor import ChildSpec as ChildSpec
from ._supervisor import RestartStrategy as RestartStrategy
from ._supervisor import RestartType as RestartType
from ._supervisor import Supervisor as Supervisor
from ._task import Task as Task
from ._task import TaskHandle as TaskHandle
from ._task import TaskStream as TaskStream
from ._task_supervisor import TaskSupervisor as TaskSupervisor
from ._timer import TimerRef as TimerRef
from ._timer import cancel_timer as cancel_timer
from ._timer import read_timer as read_timer
from ._timer import send_after as send_after
from ._timer import send_interval as send_interval

#: The seeds' name for :data:`IGNORE`, the pattern wildcard that extracts nothing.
_: _Final[_Any] = IGNORE

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "IGNORE",
    "PID",
    "Actor",
    "ActorHandle",
    "Agent",
    "CallError",
    "CallExit",
    "CallNoProc",
    "CallTimeout",
    "ChildInfo",
    "ChildSpec",
    "ChildTasks",
    "Continue",
    "Directive",
    "DynamicSupervisor",
    "ExitError",
    "From",
    "GenServer",
    "GenServerError",
    "GenServerTimeoutError",
    "InvalidPattern",
    "KeepState",
    "NextState",
    "NoProcess",
    "NoReply",
    "NotInProcess",
    "OTPError",
    "ReceiveTimeout",
    "Ref",
    "Registry",
    "RepeatState",
    "Reply",
    "RestartStrategy",
    "RestartType",
    "StartError",
    "StateMachine",
    "Status",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "Target",
    "Task",
    "TaskHandle",
    "TaskStream",
    "TaskSupervisor",
    "TaskTimeout",
    "TimerRef",
    "TreeNode",
    "Via",
    "ViaRegistry",
    "_",
    "abcast",
    "call",
    "cancel_timer",
    "cast",
    "cast_nowait",
    "demonitor",
    "exit_process",
    "format_tree",
    "get_state",
    "is_alive",
    "link",
    "make_ref",
    "match",
    "monitor",
    "multi_call",
    "process_flag",
    "process_info",
    "processes",
    "read_timer",
    "receive",
    "register",
    "registered",
    "replace_state",
    "reply",
    "run",
    "self_pid",
    "send",
    "send_after",
    "send_interval",
    "send_nowait",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "supervision_tree",
    "unlink",
    "unregister",
    "whereis",
]
