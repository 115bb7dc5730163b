"""fauxtp peer rows (the AnyIO library anyotp's async API derives from).

fauxtp's ``start`` returns at once (it does not wait for ``init``); its
``start_link`` returns an ``ActorHandle(pid, cancel_scope)``, and the way to stop a
fauxtp actor is to cancel that scope or the surrounding task group.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from _common import Round, check_count, rss_bytes
from fauxtp import ANY, PID, Actor, GenServer, call, cast, send


class Counter(GenServer):  # type: ignore[misc]
    async def init(self) -> int:
        return 0

    async def handle_call(self, request: Any, from_ref: Any, state: int) -> Any:
        if request == "incr":
            state += 1
        return state, state

    async def handle_cast(self, request: Any, state: int) -> int:
        if request == "incr":
            state += 1
        return state


async def call_latency(size: dict[str, int]) -> Round:
    n = size["n"]
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        for _ in range(n):
            await call(pid, "incr")
        dt = time.perf_counter() - t0
        got = await call(pid, "get")
        tg.cancel_scope.cancel()
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


async def cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        for _ in range(n):
            await cast(pid, "incr")
        got = await call(pid, "get", timeout=3600)
        dt = time.perf_counter() - t0
        tg.cancel_scope.cancel()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


async def fan_in(size: dict[str, int]) -> Round:
    clients, calls = size["clients"], size["calls"]

    async def client(pid: PID) -> None:
        for _ in range(calls):
            await call(pid, "incr")

    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        async with anyio.create_task_group() as clients_tg:
            for _ in range(clients):
                clients_tg.start_soon(client, pid)
        dt = time.perf_counter() - t0
        got = await call(pid, "get")
        tg.cancel_scope.cancel()
    r = Round({"calls_per_s": clients * calls / dt})
    check_count(r.errors, "counter after the calls", got, clients * calls)
    return r


async def spawn(size: dict[str, int]) -> Round:
    n = size["n"]
    pids: list[PID] = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            pid = await Counter.start(task_group=tg)
            await call(pid, "incr")
            pids.append(pid)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        tg.cancel_scope.cancel()
    t2 = time.perf_counter()
    return Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={
            "start": (t1 - t0) / n * 1e6,
            "stop": (t2 - t1) / n * 1e6,
            "stop_how": "tg.cancel_scope.cancel()",
        },
    )


class Ponger(Actor):  # type: ignore[misc]
    async def run(self, state: Any) -> Any:
        return await self.receive((("ping", ANY), self.on_ping))

    async def on_ping(self, sender: PID) -> None:
        await send(sender, "pong")


class Pinger(Actor):  # type: ignore[misc]
    def __init__(self, peer: PID, n: int, done: anyio.Event, out: dict[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.n = n
        self.done = done
        self.out = out
        out["pongs"] = 0

    async def init(self) -> int:
        return self.n

    async def run(self, left: int) -> int:
        if left == 0:
            self.done.set()
            self.stop()
        await send(self.peer, ("ping", self.pid))
        await self.receive(("pong", self.on_pong))
        return left - 1

    def on_pong(self) -> None:
        self.out["pongs"] += 1


async def ping_pong(size: dict[str, int]) -> Round:
    n = size["n"]
    done = anyio.Event()
    out: dict[str, int] = {}
    async with anyio.create_task_group() as tg:
        b = await Ponger.start(task_group=tg)
        t0 = time.perf_counter()
        await Pinger.start(b, n, done, out, task_group=tg)
        await done.wait()
        dt = time.perf_counter() - t0
        tg.cancel_scope.cancel()
    r = Round({"round_trips_per_s": n / dt})
    check_count(r.errors, "pongs received", out["pongs"], n)
    return r


ROUNDS = {
    ("call_latency", "fauxtp"): call_latency,
    ("cast_throughput", "fauxtp"): cast_throughput,
    ("fan_in", "fauxtp"): fan_in,
    ("spawn", "fauxtp"): spawn,
    ("ping_pong", "fauxtp"): ping_pong,
}
