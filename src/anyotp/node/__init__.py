"""Distribution over NATS: the same PIDs, messages, names and groups across OS
processes and machines.

What a node is
    An OS process that joined a cluster under a name (``worker1@host``) and a
    secret (the *cookie*): ``async with anyotp.node.start("worker1", url=...)``.
    Nodes talk through a NATS server (or cluster); with no URL, ``start`` runs an
    embedded ``nats-server`` for development and tests.  Like Erlang's distribution
    (``net_kernel``), names after ``erlang``, ``global`` and ``pg``.

Example::

    async with anyotp.node.start("worker1", url="nats://10.0.0.5:4222", cookie=secret):
        print(anyotp.node.node(), anyotp.node.nodes())

See ``docs/distribution.md`` for the whole story: names and groups, failures and
what each exit reason means, security, and deployment on several machines.
"""

from ._api import is_alive as is_alive
from ._api import join as join
from ._api import leave as leave
from ._api import local_members as local_members
from ._api import members as members
from ._api import monitor_node as monitor_node
from ._api import monitor_nodes as monitor_nodes
from ._api import node as node
from ._api import nodes as nodes
from ._api import register_name as register_name
from ._api import registered_names as registered_names
from ._api import spawn as spawn
from ._api import start as start
from ._api import this_node as this_node
from ._api import unregister_name as unregister_name
from ._api import whereis_name as whereis_name
from ._codec import BadEnvelope as BadEnvelope
from ._codec import MessageTooLarge as MessageTooLarge
from ._codec import Sealer as Sealer
from ._node import DEFAULT_HEARTBEAT_TIMEOUT as DEFAULT_HEARTBEAT_TIMEOUT
from ._node import Node as Node
from ._remote import RemoteChild as RemoteChild
from ._remote import child_spec as child_spec
from ._server import NatsServer as NatsServer

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "BadEnvelope",
    "MessageTooLarge",
    "NatsServer",
    "Node",
    "RemoteChild",
    "Sealer",
    "child_spec",
    "is_alive",
    "join",
    "leave",
    "local_members",
    "members",
    "monitor_node",
    "monitor_nodes",
    "node",
    "nodes",
    "register_name",
    "registered_names",
    "spawn",
    "start",
    "this_node",
    "unregister_name",
    "whereis_name",
]
