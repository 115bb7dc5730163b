"""Raw asyncio baselines, written the plainest way: an ``asyncio.Queue`` per server,
a ``Future`` per call for the reply, tasks for processes.

Run under ``asyncio.Runner`` (with ``uvloop.new_event_loop`` as the loop factory for
the uvloop backend), not under anyio.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _common import Round, check_count, exit_now, rss_bytes

STOP = object()


async def counter_server(q: asyncio.Queue[Any]) -> None:
    """A counter 'GenServer': ("incr", fut) counts and replies, ("get", fut) replies."""
    count = 0
    while True:
        req, fut = await q.get()
        if req is STOP:
            return
        if req == "incr":
            count += 1
        if fut is not None:
            fut.set_result(count)


async def call_latency(size: dict[str, int]) -> Round:
    n = size["n"]
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    server = asyncio.create_task(counter_server(q))
    t0 = time.perf_counter()
    for _ in range(n):
        fut = loop.create_future()
        q.put_nowait(("incr", fut))
        await fut
    dt = time.perf_counter() - t0
    fut = loop.create_future()
    q.put_nowait(("get", fut))
    got = await fut
    q.put_nowait((STOP, None))
    await server
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


async def cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    server = asyncio.create_task(counter_server(q))
    t0 = time.perf_counter()
    for _ in range(n):
        q.put_nowait(("incr", None))
    fut = loop.create_future()
    q.put_nowait(("get", fut))
    got = await fut
    dt = time.perf_counter() - t0
    q.put_nowait((STOP, None))
    await server
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


async def fan_in(size: dict[str, int]) -> Round:
    clients, calls = size["clients"], size["calls"]
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    server = asyncio.create_task(counter_server(q))

    async def client() -> None:
        for _ in range(calls):
            fut = loop.create_future()
            q.put_nowait(("incr", fut))
            await fut

    t0 = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    dt = time.perf_counter() - t0
    fut = loop.create_future()
    q.put_nowait(("get", fut))
    got = await fut
    q.put_nowait((STOP, None))
    await server
    r = Round({"calls_per_s": clients * calls / dt})
    check_count(r.errors, "counter after the calls", got, clients * calls)
    return r


async def idle_server(q: asyncio.Queue[Any], started: asyncio.Future[None]) -> None:
    """A server that tells its starter it is up (like awaiting ``start``), then serves."""
    started.set_result(None)
    count = 0
    while True:
        req, fut = await q.get()
        if req is STOP:
            return
        count += 1
        fut.set_result(count)


async def spawn(size: dict[str, int]) -> Round:
    n = size["n"]
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[Any]] = []
    tasks: list[asyncio.Task[None]] = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        q: asyncio.Queue[Any] = asyncio.Queue()
        started = loop.create_future()
        tasks.append(asyncio.create_task(idle_server(q, started)))
        await started
        queues.append(q)
        fut = loop.create_future()
        q.put_nowait(("incr", fut))
        await fut
    t1 = time.perf_counter()
    rss1 = rss_bytes()
    for q in queues:
        q.put_nowait((STOP, None))
    await asyncio.gather(*tasks)
    t2 = time.perf_counter()
    r = Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={"start": (t1 - t0) / n * 1e6, "stop": (t2 - t1) / n * 1e6, "stop_how": "message"},
    )
    check_count(r.errors, "servers still running", sum(not t.done() for t in tasks), 0)
    return r


async def ping_pong(size: dict[str, int]) -> Round:
    n = size["n"]
    qa: asyncio.Queue[Any] = asyncio.Queue()
    qb: asyncio.Queue[Any] = asyncio.Queue()

    async def pinger() -> int:
        got = 0
        for _ in range(n):
            qb.put_nowait("ping")
            if await qa.get() == "pong":
                got += 1
        qb.put_nowait(STOP)
        return got

    async def ponger() -> None:
        while True:
            m = await qb.get()
            if m is STOP:
                return
            qa.put_nowait("pong")

    t0 = time.perf_counter()
    b = asyncio.create_task(ponger())
    got = await asyncio.create_task(pinger())
    dt = time.perf_counter() - t0
    await b
    r = Round({"round_trips_per_s": n / dt})
    check_count(r.errors, "pongs received", got, n)
    return r


async def million(size: dict[str, int]) -> Round:
    n = size["n"]
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[Any]] = []
    tasks: list[asyncio.Task[None]] = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        q: asyncio.Queue[Any] = asyncio.Queue()
        started = loop.create_future()
        tasks.append(asyncio.create_task(idle_server(q, started)))
        await started
        queues.append(q)
    dt = time.perf_counter() - t0
    rss1 = rss_bytes()
    live = sum(not t.done() for t in tasks)
    r = Round(
        {
            "spawns_per_s": n / dt,
            "rss_gib": rss1 / 2**30,
            "kib_per_process": (rss1 - rss0) / n / 1024,
            "live": float(live),
        }
    )
    check_count(r.errors, "live servers", live, n)
    exit_now(r)  # leaves the process here when run by the worker
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return r


ROUNDS = {
    ("call_latency", "raw"): call_latency,
    ("cast_throughput", "raw"): cast_throughput,
    ("fan_in", "raw"): fan_in,
    ("spawn", "raw"): spawn,
    ("ping_pong", "raw"): ping_pong,
    ("million", "raw"): million,
}
