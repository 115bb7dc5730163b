"""Raw trio baselines, written the plainest way: a memory channel (``math.inf``
buffer, ``send_nowait``) per server, a ``trio.Event`` plus a slot per call for the
reply, nursery tasks for processes.  Run under ``trio.run``, not under anyio.
"""

from __future__ import annotations

import math
import time
from typing import Any

import trio
from _common import Round, check_count, exit_now, rss_bytes

STOP = object()


class Reply:
    """One-shot reply slot: the server fills ``value`` and sets ``event``."""

    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.value: Any = None


async def counter_server(recv: trio.MemoryReceiveChannel[Any]) -> None:
    count = 0
    async for req, reply in recv:
        if req is STOP:
            return
        if req == "incr":
            count += 1
        if reply is not None:
            reply.value = count
            reply.event.set()


async def _call(send: trio.MemorySendChannel[Any], req: str) -> Any:
    reply = Reply()
    send.send_nowait((req, reply))
    await reply.event.wait()
    return reply.value


async def call_latency(size: dict[str, int]) -> Round:
    n = size["n"]
    send, recv = trio.open_memory_channel[Any](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter_server, recv)
        t0 = time.perf_counter()
        for _ in range(n):
            reply = Reply()
            send.send_nowait(("incr", reply))
            await reply.event.wait()
        dt = time.perf_counter() - t0
        got = await _call(send, "get")
        send.send_nowait((STOP, None))
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


async def cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    send, recv = trio.open_memory_channel[Any](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter_server, recv)
        t0 = time.perf_counter()
        for _ in range(n):
            send.send_nowait(("incr", None))
        got = await _call(send, "get")
        dt = time.perf_counter() - t0
        send.send_nowait((STOP, None))
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


async def fan_in(size: dict[str, int]) -> Round:
    clients, calls = size["clients"], size["calls"]
    send, recv = trio.open_memory_channel[Any](math.inf)

    async def client() -> None:
        for _ in range(calls):
            reply = Reply()
            send.send_nowait(("incr", reply))
            await reply.event.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter_server, recv)
        t0 = time.perf_counter()
        async with trio.open_nursery() as clients_nursery:
            for _ in range(clients):
                clients_nursery.start_soon(client)
        dt = time.perf_counter() - t0
        got = await _call(send, "get")
        send.send_nowait((STOP, None))
    r = Round({"calls_per_s": clients * calls / dt})
    check_count(r.errors, "counter after the calls", got, clients * calls)
    return r


async def idle_server(
    recv: trio.MemoryReceiveChannel[Any],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    count = 0
    async for req, reply in recv:
        if req is STOP:
            return
        count += 1
        reply.value = count
        reply.event.set()


async def spawn(size: dict[str, int]) -> Round:
    n = size["n"]
    senders: list[trio.MemorySendChannel[Any]] = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            send, recv = trio.open_memory_channel[Any](math.inf)
            await nursery.start(idle_server, recv)
            senders.append(send)
            await _call(send, "incr")
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        for send in senders:
            send.send_nowait((STOP, None))
    t2 = time.perf_counter()
    return Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={"start": (t1 - t0) / n * 1e6, "stop": (t2 - t1) / n * 1e6, "stop_how": "message"},
    )


async def ping_pong(size: dict[str, int]) -> Round:
    n = size["n"]
    send_a, recv_a = trio.open_memory_channel[Any](math.inf)
    send_b, recv_b = trio.open_memory_channel[Any](math.inf)
    got = 0

    async def pinger() -> None:
        nonlocal got
        for _ in range(n):
            send_b.send_nowait("ping")
            if await recv_a.receive() == "pong":
                got += 1
        send_b.send_nowait(STOP)

    async def ponger() -> None:
        async for m in recv_b:
            if m is STOP:
                return
            send_a.send_nowait("pong")

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ponger)
        nursery.start_soon(pinger)
    dt = time.perf_counter() - t0
    r = Round({"round_trips_per_s": n / dt})
    check_count(r.errors, "pongs received", got, n)
    return r


async def million(size: dict[str, int]) -> Round:
    n = size["n"]
    senders: list[trio.MemorySendChannel[Any]] = []
    rss0 = rss_bytes()
    async with trio.open_nursery() as nursery:
        t0 = time.perf_counter()
        for _ in range(n):
            send, recv = trio.open_memory_channel[Any](math.inf)
            await nursery.start(idle_server, recv)
            senders.append(send)
        dt = time.perf_counter() - t0
        rss1 = rss_bytes()
        live = len(nursery.child_tasks)
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
        nursery.cancel_scope.cancel()
    return r


ROUNDS = {
    ("call_latency", "raw"): call_latency,
    ("cast_throughput", "raw"): cast_throughput,
    ("fan_in", "raw"): fan_in,
    ("spawn", "raw"): spawn,
    ("ping_pong", "raw"): ping_pong,
    ("million", "raw"): million,
}
