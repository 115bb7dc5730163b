"""Instruction counts per operation, which repeat where wall-clock time does not.

    python bench/callgrind.py call asyncio          # anyotp: a call and its handle_call
    python bench/callgrind.py raw-call asyncio      # the raw baseline of the same shape
    python bench/callgrind.py spawn asyncio --src /tmp/old/src   # another tree's src/

Each measurement runs this file under ``valgrind --tool=callgrind`` twice, with N and
3N operations, and prints (count at 3N - count at N) / 2N: start-up, imports and the
warm-up cancel out.  Counts repeat within about ±4% on a loaded machine, where
wall-clock ratios of the same code swing by ±30%.

Operations (the shapes of ``run.py``'s scenarios, one client, after a warm-up):

* ``call`` / ``call-none``: ``await call(pid, "incr")`` to a counter GenServer, with
  the default timeout / ``timeout=None`` (on trio, compare ``call-none``: the timeout
  wheel's ticker wakes by wall-clock time, which valgrind slows 50-fold);
* ``cast``: ``cast_nowait`` and its ``handle_cast``;
* ``ping``: a round trip between two actors (``send_nowait`` + ``receive``);
* ``spawn``: ``Counter.start`` + one call, all stopped by cancelling their task group;
* ``raw-call``, ``raw-ping``, ``raw-spawn``: the raw asyncio baselines
  (``asyncio.Queue`` and a ``Future`` per call, as in ``_raw_asyncio.py``), run with
  ``asyncio.run``.

Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 200


def _anyotp_ops(mode: str, n: int, backend: str) -> None:
    import anyio

    from anyotp import PID, Actor, GenServer, call, cast_nowait, send_nowait

    class Counter(GenServer[int]):
        async def init(self) -> int:
            return 0

        async def handle_call(self, request: Any, from_: Any, state: int) -> Any:
            return state + 1, state + 1

        async def handle_cast(self, request: Any, state: int) -> int:
            return state + 1

    class Ponger(Actor):
        async def run(self, state: Any) -> Any:
            return await self.receive((("ping", PID), self.on_ping))

        def on_ping(self, sender: PID) -> None:
            send_nowait(sender, "pong")

    class Pinger(Actor):
        async def init(self, peer: PID, left: int, done: anyio.Event) -> int:
            self.peer, self.me, self.done = peer, self.pid, done
            return left

        async def run(self, left: int) -> int:
            if left == 0:
                self.done.set()
                self.stop()
            send_nowait(self.peer, ("ping", self.me))
            await self.receive(("pong", lambda: None))
            return left - 1

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            for _ in range(WARM_UP):
                await call(pid, "incr")
            if mode == "call":
                for _ in range(n):
                    await call(pid, "incr")
            elif mode == "call-none":
                for _ in range(n):
                    await call(pid, "incr", timeout=None)
            elif mode == "cast":
                for _ in range(n):
                    cast_nowait(pid, "incr")
                await call(pid, "get", timeout=None)
            elif mode == "ping":
                done = anyio.Event()
                peer = await Ponger.start(task_group=tg)
                await Pinger.start(peer, n, done, task_group=tg)
                await done.wait()
            elif mode == "spawn":
                async with anyio.create_task_group() as servers:
                    for _ in range(n):
                        await call(await Counter.start(task_group=servers), "incr")
                    servers.cancel_scope.cancel()
            else:
                raise SystemExit(f"unknown operation {mode!r}")
            tg.cancel_scope.cancel()

    anyio.run(main, backend=backend)


def _raw_ops(mode: str, n: int) -> None:
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if mode == "raw-call":
            q: asyncio.Queue[Any] = asyncio.Queue()

            async def server() -> None:
                count = 0
                while True:
                    _, fut = await q.get()
                    count += 1
                    fut.set_result(count)

            task = asyncio.create_task(server())
            for _ in range(WARM_UP + n):
                fut = loop.create_future()
                q.put_nowait(("incr", fut))
                await fut
            task.cancel()
        elif mode == "raw-ping":
            qa: asyncio.Queue[Any] = asyncio.Queue()
            qb: asyncio.Queue[Any] = asyncio.Queue()

            async def ponger() -> None:
                while True:
                    await qb.get()
                    qa.put_nowait("pong")

            task = asyncio.create_task(ponger())
            for _ in range(WARM_UP + n):
                qb.put_nowait("ping")
                await qa.get()
            task.cancel()
        elif mode == "raw-spawn":
            stop = object()

            async def idle_server(q: asyncio.Queue[Any], started: asyncio.Future[None]) -> None:
                started.set_result(None)
                count = 0
                while True:
                    req, fut = await q.get()
                    if req is stop:
                        return
                    count += 1
                    fut.set_result(count)

            queues: list[asyncio.Queue[Any]] = []
            tasks = []
            for _ in range(n):
                q = asyncio.Queue()
                started = loop.create_future()
                tasks.append(asyncio.create_task(idle_server(q, started)))
                await started
                queues.append(q)
                fut = loop.create_future()
                q.put_nowait(("incr", fut))
                await fut
            for q in queues:
                q.put_nowait((stop, None))
            await asyncio.gather(*tasks)
        else:
            raise SystemExit(f"unknown operation {mode!r}")

    asyncio.run(main())


def _count(mode: str, n: int, backend: str, src: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONPATH=str(src))
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--worker",
                mode,
                str(n),
                backend,
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit(f"no summary line in the callgrind output of {mode}")
        return int(found.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, n, backend = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        if mode.startswith("raw-"):
            _raw_ops(mode, n)
        else:
            _anyotp_ops(mode, n, backend)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "operation", help="call, call-none, cast, ping, spawn, raw-call, raw-ping, raw-spawn"
    )
    parser.add_argument("backend", nargs="?", default="asyncio", help="asyncio or trio")
    parser.add_argument("-n", type=int, default=2000, help="N (the second run does 3N)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the src/ to measure")
    args = parser.parse_args()
    low = _count(args.operation, args.n, args.backend, args.src)
    high = _count(args.operation, 3 * args.n, args.backend, args.src)
    per_op = (high - low) / (2 * args.n)
    print(f"{args.operation} on {args.backend}: {per_op:,.0f} instructions per operation")


if __name__ == "__main__":
    main()
