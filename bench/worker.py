"""Run one benchmark scenario in this (fresh) process and print one JSON line.

Usage (``run.py`` does this for you)::

    python bench/worker.py SCENARIO BACKEND IMPL [--quick] [--repeat N] [--million N]

BACKEND is ``asyncio``, ``uvloop``, ``trio`` or ``thread``.  The JSON line has
``metrics`` (the best of ``repeat`` rounds, after an untimed warm-up round),
``errors`` (correctness failures: a wrong count is a failure, not a slow result),
``notes``, and ``skipped`` or ``error`` when there is nothing to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Round, best_of, set_exit_hook, sizes, warmup_sizes

#: No warm-up round for these: it would pre-fill the allocator and hide memory.
NO_WARMUP = {"million"}
#: A tiny warm-up for spawn (imports, first-call costs) that barely touches memory.
SMALL_WARMUP = {"spawn": {"n": 50}}


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _payload(args: argparse.Namespace, r: Round, size: dict[str, int]) -> dict[str, Any]:
    return {
        "scenario": args.scenario,
        "backend": args.backend,
        "impl": args.impl,
        "size": size,
        "metrics": r.metrics,
        "errors": r.errors,
        "notes": r.notes,
    }


def _lookup(scenario: str, backend: str, impl: str) -> Callable[..., Any]:
    if backend == "thread":
        import _threads

        if scenario in ("sync_call", "sync_cast") and impl.startswith("anyotp.sync"):
            why = _threads.sync_available()
            if why is not None:
                raise _Skip(why)
        if impl == "pykka":
            _require("pykka")
        return _threads.ROUNDS[(scenario, impl)]
    if impl == "raw":
        if backend == "trio":
            import _raw_trio

            return _raw_trio.ROUNDS[(scenario, impl)]
        import _raw_asyncio

        return _raw_asyncio.ROUNDS[(scenario, impl)]
    if impl == "fauxtp":
        _require("fauxtp")
        import _fauxtp_async

        return _fauxtp_async.ROUNDS[(scenario, impl)]
    import _anyotp_async

    return _anyotp_async.ROUNDS[(scenario, impl)]


class _Skip(Exception):
    pass


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as e:
        raise _Skip(f"{module} not installed ({e})") from e


async def _drive(
    fn: Callable[..., Any], size: dict[str, int], warm: dict[str, int] | None, repeat: int
) -> list[Round]:
    if warm is not None:
        await fn(warm)
    return [await fn(size) for _ in range(repeat)]


def _run(
    args: argparse.Namespace,
    fn: Callable[..., Any],
    size: dict[str, int],
    warm: dict[str, int] | None,
) -> list[Round]:
    backend, impl, repeat = args.backend, args.impl, args.repeat
    if backend == "thread":
        if warm is not None:
            fn(warm)
        return [fn(size) for _ in range(repeat)]
    if impl == "raw":
        if backend == "trio":
            import trio

            rounds: list[Round] = trio.run(_drive, fn, size, warm, repeat)
            return rounds
        import asyncio

        factory = None
        if backend == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(_drive(fn, size, warm, repeat))
    import anyio

    if backend == "trio":
        return anyio.run(_drive, fn, size, warm, repeat, backend="trio")
    options = {"use_uvloop": backend == "uvloop"}
    return anyio.run(_drive, fn, size, warm, repeat, backend="asyncio", backend_options=options)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("scenario")
    p.add_argument("backend", choices=["asyncio", "uvloop", "trio", "thread"])
    p.add_argument("impl")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--million", type=int, default=None)
    args = p.parse_args()

    size = sizes(args.scenario, args.quick, args.backend, args.million)
    base = {"scenario": args.scenario, "backend": args.backend, "impl": args.impl, "size": size}
    try:
        fn = _lookup(args.scenario, args.backend, args.impl)
    except _Skip as e:
        _emit({**base, "skipped": str(e)})
        return
    except KeyError:
        _emit({**base, "error": f"no such scenario/backend/impl: {args}"})
        sys.exit(2)

    if args.scenario in NO_WARMUP:
        warm = None
    else:
        warm = SMALL_WARMUP.get(args.scenario) or warmup_sizes(size)

    def exit_hook(r: Round) -> None:
        _emit(_payload(args, r, size))
        os._exit(0)

    set_exit_hook(exit_hook)
    try:
        rounds = _run(args, fn, size, warm)
    except BaseException as e:
        tb = traceback.format_exc()
        _emit({**base, "error": f"{type(e).__name__}: {e}", "traceback": tb[-4000:]})
        sys.exit(1)
    _emit(_payload(args, best_of(rounds), size))


if __name__ == "__main__":
    main()
