"""A node in its own OS process, driven by the tests through stdin/stdout lines.

Run as ``python tests/node/_peer.py URL NAME COOKIE HEARTBEAT BACKEND CODEC``.  It prints
``ready <node>`` once up, then answers one line per command:

* ``nodes`` -> ``nodes <n1,n2,...>``
* ``register NAME`` -> starts a process and registers it globally:
  ``registered NAME True|False``
* ``join GROUP`` -> starts a process that joins GROUP: ``joined GROUP <pid>``
* ``stop NAME`` -> stops the process registered globally as NAME: ``stopped NAME``
* ``monitor_nodes`` -> prints ``nodeup X`` / ``nodedown X`` as they come
* ``sender N`` -> starts a process registered globally as ``sender`` that, when cast
  ``"go"``, sends ``("seq", i)`` for i in range(N) to the global name ``collector``
  and exits with reason ``("finished", N)``: ``registered sender True``
* ``quit`` -> leaves the cluster and exits 0
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

import anyotp
import anyotp.node
from anyotp.testing import watch_exit


class Holder(anyotp.GenServer):
    """A process that holds a name or a membership; prints what it is told."""

    async def init(self) -> None:
        return None

    async def handle_call(self, request: Any, from_: anyotp.From, state: Any) -> Any:
        if request == "hang":
            return anyotp.NoReply(state)
        return (("echo", request), state)

    async def handle_info(self, message: Any, state: Any) -> Any:
        match message:
            case ("nodeup" | "nodedown" as kind, name):
                print(kind, name, flush=True)
            case other:
                print("got", repr(other), flush=True)
        return state


class Sender(anyotp.GenServer):
    """Sends N numbered messages to the global name ``collector``, then exits."""

    async def init(self, n: int) -> int:
        return n

    async def handle_cast(self, request: Any, state: int) -> Any:
        for i in range(state):
            await anyotp.send(("global", "collector"), ("seq", i))
        return anyotp.Stop(("finished", state))


async def main(url: str, name: str, cookie: str, heartbeat: float, codec: str) -> None:
    async with anyotp.node.start(
        name, url=url, cookie=cookie, heartbeat_timeout=heartbeat, codec=codec
    ) as n:
        print("ready", n.name, flush=True)
        held: dict[str, anyotp.PID] = {}
        async with anyio.create_task_group() as tg:
            stdin = anyio.wrap_file(sys.stdin)
            async for line in stdin:
                cmd, *args = line.split()
                match cmd:
                    case "nodes":
                        print("nodes", ",".join(anyotp.node.nodes()), flush=True)
                    case "register":
                        pid = await Holder.start(task_group=tg)
                        held[args[0]] = pid
                        ok = await anyio.to_thread.run_sync(anyotp.node.register_name, args[0], pid)
                        print("registered", args[0], ok, flush=True)
                    case "join":
                        pid = await Holder.start(task_group=tg)
                        held[args[0]] = pid
                        anyotp.node.join(args[0], pid)
                        print("joined", args[0], pid, flush=True)
                    case "stop":  # kill it and wait until it is dead
                        victim = held.pop(args[0])
                        watch = watch_exit(victim)
                        anyotp.exit_process(victim, "kill")
                        await watch.reason()
                        print("stopped", args[0], flush=True)
                    case "monitor_nodes":
                        pid = await Holder.start(task_group=tg)
                        held["$monitor"] = pid
                        n.monitor_nodes(pid)
                        print("monitoring", flush=True)
                    case "sender":
                        pid = await Sender.start(int(args[0]), task_group=tg)
                        ok = await anyio.to_thread.run_sync(
                            anyotp.node.register_name, "sender", pid
                        )
                        print("registered sender", ok, flush=True)
                    case "quit":
                        break
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    url, name, cookie, heartbeat, backend, codec = sys.argv[1:7]
    anyio.run(main, url, name, cookie, float(heartbeat), codec, backend=backend)
