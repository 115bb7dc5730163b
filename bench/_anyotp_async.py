"""anyotp (async API) scenarios; run under ``anyio.run`` on asyncio, uvloop or trio.

Everything here uses the public API only, the way a user would write it: a counter
``GenServer``, ``call``/``cast`` from a plain task, ``Actor`` subclasses whose
``run`` awaits ``self.receive((pattern, handler))``.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from _common import Round, check_count, exit_now, rss_bytes

import anyotp
from anyotp import (
    ANY,
    PID,
    Actor,
    GenServer,
    Task,
    call,
    cast,
    cast_nowait,
    exit_process,
    is_alive,
    send_nowait,
)


class Counter(GenServer):
    """The benchmark server: ``"incr"`` counts (call or cast), ``"get"`` reads."""

    async def init(self) -> int:
        return 0

    async def handle_call(self, request: Any, from_: anyotp.From, state: int) -> Any:
        if request == "incr":
            state += 1
        return state, state

    async def handle_cast(self, request: Any, state: int) -> int:
        if request == "incr":
            state += 1
        return state


# ----------------------------------------------------------------- call_latency


async def _call_latency(size: dict[str, int], default_timeout: bool) -> Round:
    n = size["n"]
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        if default_timeout:
            for _ in range(n):
                await call(pid, "incr")
        else:
            for _ in range(n):
                await call(pid, "incr", timeout=None)
        dt = time.perf_counter() - t0
        got = await call(pid, "get")
        tg.cancel_scope.cancel()
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


async def call_latency(size: dict[str, int]) -> Round:
    return await _call_latency(size, default_timeout=True)


async def call_latency_no_timeout(size: dict[str, int]) -> Round:
    return await _call_latency(size, default_timeout=False)


# -------------------------------------------------------------- cast_throughput


async def cast_throughput(size: dict[str, int]) -> Round:
    """``cast_nowait`` (a plain function: it never yields), then one call."""
    n = size["n"]
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        for _ in range(n):
            cast_nowait(pid, "incr")
        got = await call(pid, "get", timeout=None)
        dt = time.perf_counter() - t0
        tg.cancel_scope.cancel()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


async def await_cast_throughput(size: dict[str, int]) -> Round:
    """``await cast`` (a coroutine with the reduction budget: it yields to the loop
    every ``REDUCTIONS`` casts, so the server drains as the client sends), then one
    call.  run.py shows it against the ``cast_nowait`` row of the same run."""
    n = size["n"]
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        for _ in range(n):
            await cast(pid, "incr")
        got = await call(pid, "get", timeout=None)
        dt = time.perf_counter() - t0
        tg.cancel_scope.cancel()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


# ----------------------------------------------------------------------- fan_in


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


# ------------------------------------------------------------------------ spawn


def _spawn_round(
    n: int, t0: float, t1: float, t2: float, rss0: int, rss1: int, how: str, pids: list[PID]
) -> Round:
    r = Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={"start": (t1 - t0) / n * 1e6, "stop": (t2 - t1) / n * 1e6, "stop_how": how},
    )
    check_count(r.errors, "servers still alive after stop", sum(map(is_alive, pids)), 0)
    check_count(r.errors, "live processes left", len(anyotp.processes()), 0)
    return r


async def spawn_tg_cancel(size: dict[str, int]) -> Round:
    """Start+call each; stop them all by cancelling their task group."""
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
    return _spawn_round(n, t0, t1, t2, rss0, rss1, "tg.cancel_scope.cancel()", pids)


async def spawn_exit_process(size: dict[str, int]) -> Round:
    """Start+call each; ``exit_process(pid, "shutdown")`` each, then wait for the group."""
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
        for pid in pids:
            exit_process(pid, "shutdown")
    t2 = time.perf_counter()
    return _spawn_round(n, t0, t1, t2, rss0, rss1, 'exit_process(pid, "shutdown")', pids)


class _Spawner(Actor):
    """Starts ``n`` owned Counters with ``spawn_child_actor``, then stops each with
    ``await handle.stop()`` (one at a time, each waited for)."""

    async def init(self, n: int, out: dict[str, Any]) -> None:
        self.n = n
        self.out = out

    async def run(self, state: Any) -> Any:
        n = self.n
        handles: list[anyotp.ActorHandle] = []
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        for _ in range(n):
            h = await self.spawn_child_actor(Counter)
            await call(h.pid, "incr")
            handles.append(h)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        reasons = [await h.stop() for h in handles]
        t2 = time.perf_counter()
        self.out.update(t0=t0, t1=t1, t2=t2, rss0=rss0, rss1=rss1)
        self.out["pids"] = [h.pid for h in handles]
        self.out["bad_reasons"] = sum(1 for x in reasons if x != "shutdown")
        self.stop()


async def spawn_handle_stop(size: dict[str, int]) -> Round:
    n = size["n"]
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        await _Spawner.start(n, out, task_group=tg)
    r = _spawn_round(
        n,
        out["t0"],
        out["t1"],
        out["t2"],
        out["rss0"],
        out["rss1"],
        "await ActorHandle.stop() each",
        out["pids"],
    )
    check_count(r.errors, 'stop() results other than "shutdown"', out["bad_reasons"], 0)
    return r


# -------------------------------------------------------------------- ping_pong


class Ponger(Actor):
    """Answers ``("ping", sender)`` with ``"pong"``."""

    async def run(self, state: Any) -> Any:
        return await self.receive((("ping", PID), self.on_ping))

    def on_ping(self, sender: PID) -> None:
        send_nowait(sender, "pong")


class Pinger(Actor):
    """Sends ``n`` pings to ``peer``, one at a time, each waiting for its pong."""

    async def init(self, peer: PID, n: int, done: anyio.Event, out: dict[str, int]) -> int:
        self.peer = peer
        self.me = self.pid
        self.done = done
        self.out = out
        out["pongs"] = 0
        return n

    async def run(self, left: int) -> int:
        if left == 0:
            self.done.set()
            self.stop()
        send_nowait(self.peer, ("ping", self.me))
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


# ------------------------------------------------------------ selective_receive


class Selective(Actor):
    """Waits for ``go``, then times ``n`` receives of ``("match", ANY)``."""

    async def init(self, n: int, backlog: int, go: anyio.Event, out: dict[str, Any]) -> None:
        self.n = n
        self.backlog = backlog
        self.go = go
        self.out = out

    async def run(self, state: Any) -> Any:
        await self.go.wait()
        got: list[int] = []
        t0 = time.perf_counter()
        for _ in range(self.n):
            got.append(await self.receive((("match", ANY), self.on_match)))
        self.out["s"] = time.perf_counter() - t0
        self.out["in_order"] = got == list(range(self.n))
        left = 0
        try:
            while True:
                await self.receive((("noise", ANY), self.on_match), timeout=0)
                left += 1
        except anyotp.ReceiveTimeout:
            pass
        self.out["noise_left"] = left
        self.stop()

    def on_match(self, i: int) -> int:
        return i


async def _selective(size: dict[str, int], backlog: int) -> Round:
    n = size["n"]
    go = anyio.Event()
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        pid = await Selective.start(n, backlog, go, out, task_group=tg)
        for i in range(backlog):
            send_nowait(pid, ("noise", i))
        for i in range(n):
            send_nowait(pid, ("match", i))
        go.set()
    r = Round({"ms": out["s"] * 1e3}, notes={"us_per_receive": out["s"] / n * 1e6})
    check_count(r.errors, "matches received in send order", out["in_order"], True)
    check_count(r.errors, "non-matching messages left in the mailbox", out["noise_left"], backlog)
    return r


async def selective_backlog(size: dict[str, int]) -> Round:
    return await _selective(size, size["backlog"])


async def selective_no_backlog(size: dict[str, int]) -> Round:
    return await _selective(size, 0)


# ---------------------------------------------------------------- backlog_await


class Awaiter(Actor):
    """Queues ``backlog`` unrelated messages to itself, then times ``n`` awaits of
    tasks it starts (``Task.async_`` + ``Task.await_``): an await scans only what
    arrived after its task started, whatever the backlog."""

    async def init(self, n: int, backlog: int, out: dict[str, Any]) -> None:
        self.n = n
        self.backlog = backlog
        self.out = out

    async def run(self, state: Any) -> Any:
        for i in range(self.backlog):
            send_nowait(self.pid, ("noise", i))
        waited = 0.0
        results = 0
        for i in range(self.n):
            task = await Task.async_(int, i)
            t0 = time.perf_counter()
            results += await Task.await_(task) == i
            waited += time.perf_counter() - t0
        self.out["s"] = waited
        self.out["results"] = results
        info = anyotp.process_info(self.pid)
        self.out["left"] = info["message_queue_len"] if info else -1
        self.stop()


async def _backlog_await(size: dict[str, int], backlog: int) -> Round:
    n = size["n"]
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        await Awaiter.start(n, backlog, out, task_group=tg)
    r = Round({"us_per_await": out["s"] / n * 1e6})
    check_count(r.errors, "task results received", out["results"], n)
    check_count(r.errors, "unrelated messages left in the mailbox", out["left"], backlog)
    return r


async def backlog_await(size: dict[str, int]) -> Round:
    return await _backlog_await(size, size["backlog"])


async def backlog_await_empty(size: dict[str, int]) -> Round:
    return await _backlog_await(size, 0)


# ---------------------------------------------------------------------- million


async def million(size: dict[str, int]) -> Round:
    n = size["n"]
    pids: list[PID] = []
    async with anyio.create_task_group() as tg:
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        for _ in range(n):
            pids.append(await Counter.start(task_group=tg))
        dt = time.perf_counter() - t0
        rss1 = rss_bytes()
        live = len(anyotp.processes())
        r = Round(
            {
                "spawns_per_s": n / dt,
                "rss_gib": rss1 / 2**30,
                "kib_per_process": (rss1 - rss0) / n / 1024,
                "live": float(live),
            }
        )
        check_count(r.errors, "live servers", live, n)
        check_count(r.errors, "a call to the last one", await call(pids[-1], "get"), 0)
        exit_now(r)  # leaves the process here when run by the worker
        tg.cancel_scope.cancel()
    return r


ROUNDS = {
    ("call_latency", "anyotp"): call_latency,
    ("call_latency", "anyotp-timeout-none"): call_latency_no_timeout,
    ("cast_throughput", "anyotp"): cast_throughput,
    ("cast_throughput", "anyotp-await-cast"): await_cast_throughput,
    ("fan_in", "anyotp"): fan_in,
    ("spawn", "anyotp-tg-cancel"): spawn_tg_cancel,
    ("spawn", "anyotp-exit-process"): spawn_exit_process,
    ("spawn", "anyotp-handle-stop"): spawn_handle_stop,
    ("ping_pong", "anyotp"): ping_pong,
    ("selective_receive", "anyotp-no-backlog"): selective_no_backlog,
    ("selective_receive", "anyotp-backlog"): selective_backlog,
    ("backlog_await", "anyotp-no-backlog"): backlog_await_empty,
    ("backlog_await", "anyotp-backlog"): backlog_await,
    ("million", "anyotp"): million,
}
