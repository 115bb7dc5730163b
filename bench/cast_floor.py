"""How fast can a cast be, on this machine?  The floor under ``cast_throughput``.

    python bench/cast_floor.py              # asyncio
    python bench/cast_floor.py --uvloop     # uvloop

``cast_throughput`` times 200,000 casts and then one call that waits until the server
has handled them all, so its figure is the client's send plus the server's handling,
per message.  This script times the two halves apart, interleaved, best of
``--repeat`` rounds, in nanoseconds per message:

* ``raw``: the baseline of ``cast_throughput`` (``_raw_asyncio.py``): ``put_nowait``
  of a constant tuple, and a server task that ``await``s ``Queue.get`` and counts
  inline;
* ``anyotp``: ``cast_nowait`` to the benchmark's ``Counter`` GenServer, and its server
  loop calling ``handle_cast``;
* ``floor``: no client; a loop over a deque already holding the same envelopes that
  only pops each one and awaits ``Counter.handle_cast`` -- the least any server whose
  ``handle_cast`` is an ``async def`` can do per message -- and the same loop with the
  handler's ``+ 1`` inlined (what the coroutine costs is the difference).

The last line gives the best ratio any implementation with an ``async def
handle_cast`` could reach against the baseline: the baseline's client + server over
anyotp's client + the floor's server.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque
from typing import Any

import _raw_asyncio
import anyio
from _anyotp_async import Counter

from anyotp import call, cast_nowait
from anyotp._core import CAST_TAG


async def raw(n: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    server = asyncio.create_task(_raw_asyncio.counter_server(q))
    await asyncio.sleep(0)  # the server waits in get()
    t0 = time.perf_counter()
    for _ in range(n):
        q.put_nowait(("incr", None))
    t1 = time.perf_counter()
    fut = loop.create_future()
    q.put_nowait(("get", fut))
    got = await fut
    t2 = time.perf_counter()
    q.put_nowait((_raw_asyncio.STOP, None))
    await server
    assert got == n, f"raw: the server counted {got} of {n}"
    return (t1 - t0) / n * 1e9, (t2 - t1) / n * 1e9


async def anyotp(n: int) -> tuple[float, float]:
    async with anyio.create_task_group() as tg:
        pid = await Counter.start(task_group=tg)
        t0 = time.perf_counter()
        for _ in range(n):
            cast_nowait(pid, "incr")
        t1 = time.perf_counter()
        got = await call(pid, "get", timeout=None)
        t2 = time.perf_counter()
        tg.cancel_scope.cancel()
    assert got == n, f"anyotp: the server counted {got} of {n}"
    return (t1 - t0) / n * 1e9, (t2 - t1) / n * 1e9


async def floor(n: int, awaited: bool) -> float:
    q: deque[Any] = deque()
    for _ in range(n):
        q.append((CAST_TAG, "incr"))
    server = Counter()
    handle_cast = Counter.handle_cast
    state = 0
    t0 = time.perf_counter()
    if awaited:
        while q:
            msg = q.popleft()
            state = await handle_cast(server, msg[1], state)
    else:
        while q:
            msg = q.popleft()
            if msg[1] == "incr":
                state += 1
    t1 = time.perf_counter()
    assert state == n, f"floor: counted {state} of {n}"
    return (t1 - t0) / n * 1e9


async def main(n: int, repeat: int) -> None:
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, value), value)

    for _ in range(repeat):  # interleaved: one of each per round
        client, server = await raw(n)
        keep("raw client", client)
        keep("raw server", server)
        client, server = await anyotp(n)
        keep("anyotp client", client)
        keep("anyotp server", server)
        keep("floor server, awaited handle_cast", await floor(n, True))
        keep("floor server, handler inlined", await floor(n, False))
    for name, value in best.items():
        print(f"{name:36} {value:7.0f} ns/message")
    raw_total = best["raw client"] + best["raw server"]
    ours = best["anyotp client"] + best["anyotp server"]
    bound = best["anyotp client"] + best["floor server, awaited handle_cast"]
    print(f"anyotp against raw:                  {raw_total / ours:.2f}x the rate")
    print(f"best reachable with an async handler: {raw_total / bound:.2f}x the rate")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200_000, help="messages per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (best of)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(args.n, args.repeat))
    else:
        asyncio.run(main(args.n, args.repeat))
