"""The sealed runtime: everything above it uses only the names exported here.

Layers, bottom up (a module imports only those before it)::

    _ids      PID, Ref, node identity (name, creation)
    _backend  the running loop (asyncio, trio, or a thread loop) and its waiters
    _pattern  compiled patterns
    _mailbox  a process's mailbox, selective receive
    _names    registered names, via-names
    _process  the process control block (Proc), exit signals, exit hooks, spawn,
              stop-and-wait, owned children
    _routing  route(target): a local process or the transport to another node;
              send/cast (and _nowait), links, monitors, exit signals; the transport seam
    _gen      From, call (async and blocking), reply, the one envelope decoder

Nothing outside ``_core`` imports an underscore name from it (a test checks).
"""

from ._backend import TIMEOUT as TIMEOUT
from ._backend import Loop as Loop
from ._backend import Waiter as Waiter
from ._backend import check_timeout as check_timeout
from ._backend import current_loop as current_loop
from ._backend import new_thread_loop as new_thread_loop
from ._backend import seconds as seconds
from ._backend import thread_waiter as thread_waiter
from ._backend import wake_waiter as wake_waiter
from ._gen import CALL as CALL
from ._gen import CALL_TAG as CALL_TAG
from ._gen import CAST as CAST
from ._gen import INFO as INFO
from ._gen import PARENT_EXIT as PARENT_EXIT
from ._gen import SYSTEM as SYSTEM
from ._gen import SYSTEM_TAG as SYSTEM_TAG
from ._gen import CallRaised as CallRaised
from ._gen import From as From
from ._gen import call as call
from ._gen import call_blocking as call_blocking
from ._gen import decode as decode
from ._gen import deliver_reply as deliver_reply
from ._gen import gen_call as gen_call
from ._gen import reply as reply
from ._ids import LOCAL as LOCAL
from ._ids import PID as PID
from ._ids import NodeId as NodeId
from ._ids import Ref as Ref
from ._ids import local_node as local_node
from ._ids import make_ref as make_ref
from ._ids import pid_from_wire as pid_from_wire
from ._ids import ref_from_wire as ref_from_wire
from ._ids import reset_local_node as reset_local_node
from ._ids import set_local_node as set_local_node
from ._mailbox import Mailbox as Mailbox
from ._names import Via as Via
from ._names import ViaRegistry as ViaRegistry
from ._names import names as names
from ._names import register as register
from ._names import registered as registered
from ._names import resolve_via as resolve_via
from ._names import set_global_registry as set_global_registry
from ._names import unregister as unregister
from ._names import whereis as whereis
from ._pattern import ANY as ANY
from ._pattern import IGNORE as IGNORE
from ._pattern import _ as _
from ._pattern import compile_one as compile_one
from ._pattern import compile_pattern as compile_pattern
from ._pattern import compile_patterns as compile_patterns
from ._pattern import match as match
from ._process import DEAD as DEAD
from ._process import EXITING as EXITING
from ._process import REDUCTIONS as REDUCTIONS
from ._process import RUNNING as RUNNING
from ._process import STARTING as STARTING
from ._process import Body as Body
from ._process import ChildTasks as ChildTasks
from ._process import DeathWatch as DeathWatch
from ._process import ExitHook as ExitHook
from ._process import InitFailed as InitFailed
from ._process import Proc as Proc
from ._process import ProcessExit as ProcessExit
from ._process import Shutdown as Shutdown
from ._process import Status as Status
from ._process import cancel_exit_hook as cancel_exit_hook
from ._process import check_shutdown as check_shutdown
from ._process import child_tasks as child_tasks
from ._process import crash_report as crash_report
from ._process import current_process as current_process
from ._process import is_awaitable as is_awaitable
from ._process import is_process_class as is_process_class
from ._process import log as log
from ._process import maybe_await as maybe_await
from ._process import on_exit as on_exit
from ._process import set_current_process as set_current_process
from ._process import spawn as spawn
from ._process import stop as stop
from ._process import stop_all as stop_all
from ._process import stop_blocking as stop_blocking
from ._process import stop_owned as stop_owned
from ._process import table as table
from ._process import wait_dead as wait_dead
from ._routing import CAST_TAG as CAST_TAG
from ._routing import MonitorHook as MonitorHook
from ._routing import Target as Target
from ._routing import Transport as Transport
from ._routing import accept_demonitor as accept_demonitor
from ._routing import accept_link as accept_link
from ._routing import accept_monitor as accept_monitor
from ._routing import accept_unlink as accept_unlink
from ._routing import cast as cast
from ._routing import cast_nowait as cast_nowait
from ._routing import deliver_down as deliver_down
from ._routing import deliver_exit as deliver_exit
from ._routing import demonitor as demonitor
from ._routing import exit_process as exit_process
from ._routing import get_transport as get_transport
from ._routing import is_alive as is_alive
from ._routing import link as link
from ._routing import lookup as lookup
from ._routing import monitor as monitor
from ._routing import noproc_message as noproc_message
from ._routing import processes as processes
from ._routing import require_current as require_current
from ._routing import route as route
from ._routing import self_pid as self_pid
from ._routing import send as send
from ._routing import send_nowait as send_nowait
from ._routing import set_transport as set_transport
from ._routing import unlink as unlink
