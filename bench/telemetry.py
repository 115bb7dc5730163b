"""What telemetry costs a ``call``: nothing attached, against a no-op handler attached.

    python bench/telemetry.py                      # asyncio and trio, 5 rounds
    python bench/telemetry.py --against bfa2d87    # also the code before telemetry

Every figure comes from a fresh subprocess (``--worker``) timing 20,000 sequential
``await call(pid, "incr")`` to a counter GenServer (after a warm-up of 2,000), as
``call_latency`` in ``run.py`` does.  The rounds are interleaved (off, no-op, off,
no-op, ...) and the best of each is kept.  ``--against REV`` extracts ``src/`` of that
git revision (``git archive``) and times it too, as the "before" row: the runtime
without any emission site.  The ratios are against "off".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CALLS = 20_000


def worker(mode: str, backend: str, calls: int) -> None:
    import anyio

    from anyotp import GenServer, call

    class Counter(GenServer):
        async def init(self) -> int:
            return 0

        async def handle_call(self, request: Any, from_: Any, state: int) -> Any:
            return state + 1, state + 1

    if mode == "noop":
        from anyotp import telemetry

        def noop(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
            pass

        telemetry.attach_many("bench-noop", telemetry.EVENTS, noop)

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            pid = await Counter.start(task_group=tg)
            for _ in range(calls // 10):
                await call(pid, "incr")
            t0 = time.perf_counter()
            for _ in range(calls):
                await call(pid, "incr")
            dt = time.perf_counter() - t0
            tg.cancel_scope.cancel()
        return dt / calls * 1e6

    print(json.dumps({"us_per_call": anyio.run(main, backend=backend)}))


def run_one(mode: str, backend: str, calls: int, src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = [sys.executable, __file__, "--worker", mode, backend, str(calls)]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    us: float = json.loads(out.splitlines()[-1])["us_per_call"]
    return us


def extract(rev: str, into: Path) -> Path:
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    worker_args = ("MODE", "BACKEND", "CALLS")
    p.add_argument("--worker", nargs=3, metavar=worker_args, help=argparse.SUPPRESS)
    p.add_argument("--backends", default="asyncio,trio")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=CALLS)
    p.add_argument("--against", metavar="REV", help="also time src/ of this git revision")
    args = p.parse_args()
    if args.worker:
        mode, backend, calls = args.worker
        worker(mode, backend, int(calls))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        impls: dict[str, Path] = {"off": ROOT / "src", "no-op handler": ROOT / "src"}
        if args.against:
            impls = {f"before ({args.against})": extract(args.against, Path(tmp)), **impls}
        print(f"call latency, best of {args.rounds} interleaved rounds of {args.calls:,} calls")
        print(f"{'backend':<8} {'telemetry':<28} {'us/call':>8} {'vs off':>7}")
        for backend in args.backends.split(","):
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, src in impls.items():
                    mode = "noop" if name == "no-op handler" else "off"
                    us = run_one(mode, backend, args.calls, src)
                    best[name] = min(us, best.get(name, us))
            for name, us in best.items():
                print(f"{backend:<8} {name:<28} {us:>8.2f} {us / best['off']:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
