"""anyotp demo, distributed: the same parse of a source tree, over worker nodes.

``python examples/demo.py --nodes 3`` runs this: the first node (this OS process)
starts an embedded NATS server and the coordinator, then 3 worker nodes as OS
processes.  Each worker node runs a ``Worker`` GenServer that joins the process
group ``demo.workers``; the coordinator monitors every worker and keeps a window of
files in flight on each.  ``--kill-node-after 2`` SIGKILLs the last worker node two
seconds in: its monitor fires ``DOWN ... noconnection`` and its files in flight are
dispatched again to the others, so no file is lost.

Node tree::

    coord@host   embedded nats-server, Coordinator (GenServer)
    w1@host ...  Worker (GenServer) in group "demo.workers"

Run::

    python examples/demo.py [PATH] --nodes N [--kill-node-after SECONDS]
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

import anyotp
import anyotp.node
from anyotp import PID, From, GenServer, cast, monitor, self_pid

GROUP = "demo.workers"
#: files in flight per worker node
WINDOW = 8


@dataclass
class Totals:
    """What the coordinator knows; snapshots of it go to the main task."""

    total: int
    ok: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    lines: int = 0
    functions: int = 0
    async_functions: int = 0
    classes: int = 0
    imports: int = 0
    per_node: dict[str, int] = field(default_factory=dict)
    redispatched: int = 0
    nodes_lost: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.ok + self.failed


class Worker(GenServer):
    """Parses the files it is cast, and casts each outcome back."""

    async def init(self) -> None:
        anyotp.node.join(GROUP, self_pid())

    async def handle_cast(self, request: Any, state: None) -> None:
        from demo import parse_file  # the one-process demo's work function

        match request:
            case ("parse", PID() as reply_to, str(path)):
                try:
                    outcome: Any = ("ok", parse_file(path))
                except Exception as e:  # a broken file: report it, keep serving
                    outcome = ("failed", type(e).__name__)
                await cast(reply_to, ("parsed", self_pid(), path, outcome))
        return state


class Coordinator(GenServer):
    """Hands files to workers, WINDOW at a time each; requeues the files of a lost
    worker when its DOWN comes."""

    async def init(self, paths: list[str], workers: list[PID]) -> dict[str, Any]:
        state: dict[str, Any] = {
            "queue": collections.deque(paths),
            "pending": {},
            "totals": Totals(total=len(paths)),
            "accounted": set(),
        }
        for w in workers:
            monitor(w)
            state["pending"][w] = set()
            state["totals"].per_node.setdefault(anyotp.node.node(w), 0)
        for w in workers:
            await self._fill(w, state)
        return state

    async def _fill(self, worker: PID, state: dict[str, Any]) -> None:
        pending: set[str] = state["pending"][worker]
        q: collections.deque[str] = state["queue"]
        while q and len(pending) < WINDOW:
            path = q.popleft()
            pending.add(path)
            await cast(worker, ("parse", self_pid(), path))

    async def handle_cast(self, request: Any, state: dict[str, Any]) -> dict[str, Any]:
        match request:
            case ("parsed", PID() as worker, str(path), outcome):
                pending = state["pending"].get(worker)
                if pending is not None:
                    pending.discard(path)
                t: Totals = state["totals"]
                if path not in state["accounted"]:
                    state["accounted"].add(path)
                    node = anyotp.node.node(worker)
                    t.per_node[node] = t.per_node.get(node, 0) + 1
                    match outcome:
                        case ("ok", stats):
                            t.ok += 1
                            t.lines += stats.lines
                            t.functions += stats.functions
                            t.async_functions += stats.async_functions
                            t.classes += stats.classes
                            t.imports += stats.imports
                        case ("failed", error):
                            t.failed += 1
                            t.failures.append((path, error))
                if pending is not None:
                    await self._fill(worker, state)
        return state

    async def handle_info(self, message: Any, state: dict[str, Any]) -> dict[str, Any]:
        match message:
            case ("DOWN", _, "process", PID() as worker, reason):
                lost: set[str] = state["pending"].pop(worker, set())
                t: Totals = state["totals"]
                t.nodes_lost.append(f"{anyotp.node.node(worker)} ({reason})")
                t.redispatched += len(lost)
                state["queue"].extendleft(sorted(lost))
                for w in list(state["pending"]):
                    await self._fill(w, state)
        return state

    async def handle_call(self, request: Any, from_: From, state: dict[str, Any]) -> Any:
        t: Totals = state["totals"]
        snapshot = Totals(**dict(vars(t).items()))
        snapshot.per_node = dict(t.per_node)
        snapshot.failures = list(t.failures)
        return (snapshot, state)


# --------------------------------------------------------------------- worker node


async def worker_main(name: str, url: str, cookie: str) -> None:
    """A worker node: serve until stdin closes (the coordinator node exited)."""
    async with anyotp.node.start(name, url=url, cookie=cookie), anyio.create_task_group() as tg:
        await Worker.start(task_group=tg)
        print("ready", flush=True)
        await anyio.wrap_file(sys.stdin).read()
        tg.cancel_scope.cancel()


# -------------------------------------------------------------------- first node


def _spawn_worker(name: str, url: str, cookie: str, backend: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", name, url, cookie, backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def run_nodes(
    paths: list[str], nodes: int, kill_after: float | None, backend: str
) -> tuple[Totals, float]:
    """Run the distributed parse; return the totals and the wall time in seconds."""
    cookie = os.urandom(16).hex()
    async with anyotp.node.start("coord", cookie=cookie) as me:
        workers = [_spawn_worker(f"w{i + 1}", me.url, cookie, backend) for i in range(nodes)]
        try:
            for w in workers:  # each prints "ready" once its Worker joined the group
                assert w.stdout is not None
                await anyio.to_thread.run_sync(w.stdout.readline)
            with anyio.fail_after(30):
                while len(anyotp.node.members(GROUP)) < nodes:
                    await anyio.sleep(0.01)
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                coord = await Coordinator.start(paths, anyotp.node.members(GROUP), task_group=tg)
                killed = False
                while True:
                    snap: Totals = await anyotp.call(coord, "snapshot")
                    if snap.done == snap.total:
                        break
                    if (
                        kill_after is not None
                        and not killed
                        and time.perf_counter() - started >= kill_after
                    ):
                        workers[-1].send_signal(signal.SIGKILL)
                        killed = True
                    await anyio.sleep(0.05)
                seconds = time.perf_counter() - started
                tg.cancel_scope.cancel()
        finally:
            for w in workers:
                if w.stdin is not None:
                    w.stdin.close()
            for w in workers:
                try:
                    w.wait(5)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
                if w.stdout is not None:
                    w.stdout.close()
    return snap, seconds


def print_nodes_summary(t: Totals, seconds: float, path: str, nodes: int) -> None:
    """The summary: the one-process demo's rows plus the node count and per-node files."""
    rows = [
        ("files parsed", f"{t.ok:,}"),
        ("files failed", f"{t.failed:,}"),
        ("lines", f"{t.lines:,}"),
        ("functions", f"{t.functions:,}"),
        ("async functions", f"{t.async_functions:,}"),
        ("classes", f"{t.classes:,}"),
        ("imports", f"{t.imports:,}"),
        ("worker nodes", f"{nodes}"),
        *((f"  files on {n}", f"{c:,}") for n, c in sorted(t.per_node.items())),
        ("nodes lost", ", ".join(t.nodes_lost) or "none"),
        ("files re-dispatched", f"{t.redispatched:,}"),
        ("wall time", f"{seconds:.2f} s"),
        ("files per second", f"{t.done / seconds if seconds else 0:,.0f}"),
    ]
    print(f"anyotp demo over {nodes} nodes: {path}")
    for name, value in rows:
        print(f"  {name:<22} {value}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _, _, name, url, cookie, backend = sys.argv
        anyio.run(worker_main, name, url, cookie, backend=backend)
