"""Instruction counts per operation, which repeat where wall-clock time does not.

    python bench/callgrind.py call asyncio          # anyotp: a call and its handle_call
    python bench/callgrind.py raw-call asyncio      # the raw baseline of the same shape
    python bench/callgrind.py spawn asyncio --src /tmp/old/src   # another tree's src/

Each measurement runs this file under ``valgrind --tool=callgrind`` twice, with N and
3N operations, and prints (count at 3N - count at N) / 2N: start-up, imports and the
warm-up cancel out.  Counts repeat within about ±4% on a loaded machine, where
wall-clock ratios of the same code swing by ±30%.

Operations: the scenarios of ``run.py`` themselves (``_anyotp_async.py`` and
``_raw_asyncio.py``), sized to N operations:

* ``call`` / ``call-none``: ``call_latency`` with the default timeout / with
  ``timeout=None`` (on trio, compare ``call-none``: the timeout wheel's ticker wakes by
  wall-clock time, which valgrind slows 50-fold);
* ``cast``: ``cast_throughput`` (``cast_nowait`` and its ``handle_cast``);
* ``fan``: ``fan_in`` (100 clients calling one server, N calls in all);
* ``ping``: ``ping_pong`` (a round trip between two actors);
* ``spawn``: ``spawn`` stopped by task-group cancel (start + one call + stop);
* ``spawn-stop``: ``spawn`` by an actor's ``spawn_child_actor``, each child stopped
  with ``await handle.stop()`` in turn;
* ``raw-call``, ``raw-cast``, ``raw-fan``, ``raw-ping``, ``raw-spawn``: the raw asyncio baselines
  of the same scenarios, run with ``asyncio.run``.

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

#: operation -> (module, scenario function): anyotp's run under anyio, raw ones under
#: asyncio.run, as bench/worker.py runs them
OPERATIONS = {
    "call": ("_anyotp_async", "call_latency"),
    "call-none": ("_anyotp_async", "call_latency_no_timeout"),
    "cast": ("_anyotp_async", "cast_throughput"),
    "fan": ("_anyotp_async", "fan_in"),
    "ping": ("_anyotp_async", "ping_pong"),
    "spawn": ("_anyotp_async", "spawn_tg_cancel"),
    "spawn-stop": ("_anyotp_async", "spawn_handle_stop"),
    "raw-call": ("_raw_asyncio", "call_latency"),
    "raw-cast": ("_raw_asyncio", "cast_throughput"),
    "raw-fan": ("_raw_asyncio", "fan_in"),
    "raw-ping": ("_raw_asyncio", "ping_pong"),
    "raw-spawn": ("_raw_asyncio", "spawn"),
}


def _run_operation(mode: str, n: int, backend: str) -> None:
    import importlib

    if mode not in OPERATIONS:
        raise SystemExit(f"unknown operation {mode!r}: one of {', '.join(OPERATIONS)}")
    module, name = OPERATIONS[mode]
    scenario: Any = getattr(importlib.import_module(module), name)
    # fan-in: 100 clients, n calls in all (main checks n is a multiple of 100)
    size = {"n": n, "clients": 100, "calls": n // 100}
    if module == "_raw_asyncio":
        import asyncio

        asyncio.run(scenario(size))
    else:
        import anyio

        anyio.run(scenario, size, backend=backend)


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
        _run_operation(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("operation", help=", ".join(OPERATIONS))
    parser.add_argument("backend", nargs="?", default="asyncio", help="asyncio or trio")
    parser.add_argument("-n", type=int, default=2000, help="N (the second run does 3N)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the src/ to measure")
    args = parser.parse_args()
    if args.operation in ("fan", "raw-fan") and (args.n < 100 or args.n % 100):
        parser.error(f"{args.operation}: -n must be a multiple of 100 (100 clients)")
    low = _count(args.operation, args.n, args.backend, args.src)
    high = _count(args.operation, 3 * args.n, args.backend, args.src)
    per_op = (high - low) / (2 * args.n)
    print(f"{args.operation} on {args.backend}: {per_op:,.0f} instructions per operation")


if __name__ == "__main__":
    main()
