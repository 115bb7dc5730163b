"""Distribution benchmarks: anyotp nodes against raw nats-py on the same server.

    .venv/bin/python bench/nodes.py [--quick] [--backend asyncio|trio]
                                    [--only latency,throughput,detection,scaling]

Every figure is measured in this one run, next to its floor:

* ``latency``: one client, sequential cross-node ``call`` to a GenServer on another
  node (OS process) against raw nats-py ``request`` to a responder in another OS
  process → median and p99 µs.  Target: <= 1.5x raw.
* ``throughput``: ``cast`` of 100-byte payloads to a GenServer on another node, then
  one ``call`` that must see them all, in order, against raw ``publish`` to a
  subscriber in another OS process (checked the same way) → msg/s.  Target: >= 0.7x raw.
* ``detection``: a peer node SIGKILLed (10 trials) and SIGSTOPped (10 trials, with
  ``--heartbeat`` seconds of heartbeat timeout): seconds until ``nodedown``, median
  and max.
* ``scaling``: the demo's files/s in one process and with 1, 2 and 4 worker nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

import anyotp
import anyotp.node
from anyotp.node import NatsServer

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "bench-cookie"
PAYLOAD = b"x" * 100


# ------------------------------------------------------------------ peer programs


async def _raw_responder(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    state = {"count": 0, "next": 0, "ordered": True}

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    async def sink(msg: Any) -> None:
        seq = int.from_bytes(msg.data[:8], "big")
        state["ordered"] = bool(state["ordered"] and seq == state["next"])
        state["next"] = seq + 1
        state["count"] += 1

    async def count(msg: Any) -> None:
        await msg.respond(f"{state['count']} {state['ordered']}".encode())
        state.update(count=0, next=0, ordered=True)

    await nc.subscribe("bench.echo", cb=echo)
    await nc.subscribe("bench.sink", cb=sink)
    await nc.subscribe("bench.count", cb=count)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.close()


class Echo(anyotp.GenServer):
    """Answers calls with the request; counts casts and checks their order."""

    async def init(self) -> dict[str, Any]:
        return {"count": 0, "next": 0, "ordered": True}

    async def handle_call(self, request: Any, from_: anyotp.From, state: Any) -> Any:
        if request == "count":
            result = (state["count"], state["ordered"])
            state.update(count=0, next=0, ordered=True)
            return (result, state)
        return (request, state)

    async def handle_cast(self, request: Any, state: Any) -> Any:
        seq = request[0]
        state["ordered"] = state["ordered"] and seq == state["next"]
        state["next"] = seq + 1
        state["count"] += 1
        return state


async def _node_peer(url: str, heartbeat: float) -> None:
    async with (
        anyotp.node.start(
            f"peer{os.getpid()}", url=url, cookie=COOKIE, heartbeat_timeout=heartbeat
        ),
        anyio.create_task_group() as tg,
    ):
        pid = await Echo.start(task_group=tg)
        await anyio.to_thread.run_sync(anyotp.node.register_name, "bench.echo", pid)
        print("ready", flush=True)
        await anyio.wrap_file(sys.stdin).read()
        tg.cancel_scope.cancel()


def _spawn(*args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"peer {args} did not start: {line!r}")
    return p


def _close(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGCONT)
    if p.stdin is not None:
        p.stdin.close()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p.stdout is not None:
        p.stdout.close()


# ------------------------------------------------------------------- raw floors


async def raw_latency(url: str, n: int) -> list[float]:
    import nats

    nc = await nats.connect(url)
    times = []
    for i in range(n + n // 10):
        t = time.perf_counter()
        await nc.request("bench.echo", b"%d" % i, timeout=5)
        if i >= n // 10:
            times.append(time.perf_counter() - t)
    await nc.close()
    return times


async def raw_throughput(url: str, n: int) -> tuple[float, int, bool]:
    import nats

    nc = await nats.connect(url)
    await nc.request("bench.count", b"", timeout=5)  # reset
    t = time.perf_counter()
    for i in range(n):
        await nc.publish("bench.sink", i.to_bytes(8, "big") + PAYLOAD)
    reply = await nc.request("bench.count", b"", timeout=60)
    elapsed = time.perf_counter() - t
    count, ordered = reply.data.decode().split()
    await nc.close()
    return n / elapsed, int(count), ordered == "True"


# ---------------------------------------------------------------------- anyotp


async def node_latency_and_throughput(
    url: str, n_calls: int, n_casts: int
) -> tuple[list[float], float, int, bool]:
    async with anyotp.node.start("bench", url=url, cookie=COOKIE):
        with anyio.fail_after(10):
            while (pid := anyotp.node.whereis_name("bench.echo")) is None:
                await anyio.sleep(0.01)
        times = []
        for i in range(n_calls + n_calls // 10):
            t = time.perf_counter()
            await anyotp.call(pid, i)
            if i >= n_calls // 10:
                times.append(time.perf_counter() - t)
        await anyotp.call(pid, "count")  # reset
        t = time.perf_counter()
        for i in range(n_casts):
            await anyotp.cast(pid, (i, PAYLOAD))
        count, ordered = await anyotp.call(pid, "count", timeout=60)
        rate = n_casts / (time.perf_counter() - t)
    return times, rate, count, ordered


class _Down(anyotp.GenServer):
    async def init(self, out: queue.Queue[Any]) -> Any:
        return out

    async def handle_info(self, message: Any, state: Any) -> Any:
        state.put((time.perf_counter(), message))
        return state


async def detection(url: str, trials: int, heartbeat: float) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"kill": [], "stop": []}
    async with anyotp.node.start("bench", url=url, cookie=COOKIE, heartbeat_timeout=heartbeat):
        inbox: queue.Queue[Any] = queue.Queue()
        async with anyio.create_task_group() as tg:
            watcher = await _Down.start(inbox, task_group=tg)
            anyotp.node.this_node().monitor_nodes(watcher)
            for kind, signum in (("kill", signal.SIGKILL), ("stop", signal.SIGSTOP)):
                for _ in range(trials):
                    p = await anyio.to_thread.run_sync(_spawn, "--node-peer", url, str(heartbeat))
                    while True:
                        _, msg = await anyio.to_thread.run_sync(inbox.get, True, 10)
                        if msg[0] == "nodeup":
                            break
                    t = time.perf_counter()
                    os.kill(p.pid, signum)
                    while True:
                        at, msg = await anyio.to_thread.run_sync(inbox.get, True, heartbeat * 3)
                        if msg[0] == "nodedown":
                            results[kind].append(at - t)
                            break
                    if signum == signal.SIGSTOP:
                        os.kill(p.pid, signal.SIGKILL)
                    await anyio.to_thread.run_sync(_close, p)
            tg.cancel_scope.cancel()
    return results


def scaling(limit: int | None, backend: str) -> list[tuple[str, float]]:
    rows = []
    extra = ["--no-progress", "--backend", backend] + (["--limit", str(limit)] if limit else [])
    for label, args in [
        ("one process", []),
        *((f"{k} worker nodes", ["--nodes", str(k)]) for k in (1, 2, 4)),
    ]:
        run = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "demo.py"), *args, *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        out = run.stdout
        m = re.search(r"files per second\s+\S*?\s*([\d,]+)", out)
        if m is None:
            print(f"demo {label} failed ({run.returncode}): {run.stderr[-1500:]}")
        rows.append((label, float(m.group(1).replace(",", "")) if m else float("nan")))
    return rows


# --------------------------------------------------------------------------- main


def _us(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1e6:,.0f} µs (p99 {xs[int(len(xs) * 0.99) - 1] * 1e6:,.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--only", default="latency,throughput,detection,scaling")
    parser.add_argument("--heartbeat", type=float, default=3.0, help="seconds (detection)")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--demo-limit", type=int, default=None, help="files for scaling")
    args = parser.parse_args()
    only = set(args.only.split(","))
    n_calls, n_casts = (500, 5_000) if args.quick else (5_000, 100_000)
    trials = 2 if args.quick else args.trials
    status = 0
    server = NatsServer.start()
    try:
        print(
            f"nats-server at {server.url}; backend {args.backend}; python {sys.version.split()[0]}"
        )
        if only & {"latency", "throughput"}:
            raw = _spawn("--raw-responder", server.url)
            try:
                raw_times = asyncio.run(raw_latency(server.url, n_calls))
                raw_rate, raw_count, raw_ordered = asyncio.run(raw_throughput(server.url, n_casts))
            finally:
                _close(raw)
            peer = _spawn("--node-peer", server.url, "12")
            try:
                times, rate, count, ordered = anyio.run(
                    node_latency_and_throughput, server.url, n_calls, n_casts, backend=args.backend
                )
            finally:
                _close(peer)
            ratio = statistics.median(times) / statistics.median(raw_times)
            print(
                f"call latency     anyotp {_us(times)}   raw nats-py request {_us(raw_times)}"
                f"   ratio {ratio:.2f}x (target <= 1.5x)"
            )
            ok = count == n_casts and ordered and raw_count == n_casts and raw_ordered
            verdict = (
                "all delivered in order"
                if ok
                else f"LOST OR REORDERED: {count}/{n_casts}, ordered={ordered}"
            )
            print(
                f"cast throughput  anyotp {rate:,.0f} msg/s   "
                f"raw nats-py publish {raw_rate:,.0f} msg/s   "
                f"ratio {rate / raw_rate:.2f}x (target >= 0.7x)   {verdict}"
            )
            status |= 0 if ok else 1
        if "detection" in only:
            res = anyio.run(detection, server.url, trials, args.heartbeat, backend=args.backend)
            for kind, xs in res.items():
                what = (
                    "SIGKILL"
                    if kind == "kill"
                    else f"SIGSTOP (heartbeat timeout {args.heartbeat} s)"
                )
                print(
                    f"node-loss detection, {what}: median {statistics.median(xs):.3f} s, "
                    f"max {max(xs):.3f} s over {len(xs)} trials"
                )
    finally:
        server.stop()
    if "scaling" in only:
        limit = args.demo_limit if args.demo_limit else (300 if args.quick else None)
        for label, fps in scaling(limit, args.backend):
            print(f"demo files/s     {label:<16} {fps:,.0f}")
    return status


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw-responder"]:
        asyncio.run(_raw_responder(sys.argv[2]))
    elif sys.argv[1:2] == ["--node-peer"]:
        anyio.run(_node_peer, sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(main())
