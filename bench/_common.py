"""Shared helpers for the benchmark workers: sizes, memory probes, result rounds.

Every scenario module exposes ``async def`` (or plain, for threads) *round*
functions that run one measurement and return a :class:`Round`: a dict of
metrics plus a list of correctness errors.  The worker runs a warm-up round and
``repeat`` timed rounds and keeps the best value of each metric.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- sizes

#: Full sizes, as the benchmark brief specifies them.
FULL: dict[str, dict[str, int]] = {
    "call_latency": {"n": 20_000},
    "cast_throughput": {"n": 200_000},
    "fan_in": {"clients": 100, "calls": 200},
    "spawn": {"n": 10_000},
    "ping_pong": {"n": 100_000},
    "selective_receive": {"n": 10_000, "backlog": 10_000},
    "backlog_await": {"n": 500, "backlog": 100_000},
    "million": {"n": 1_000_000},
    "sync_call": {"n": 20_000},
    "sync_cast": {"n": 200_000},
}

#: ``--quick`` sizes: a smoke run, not a measurement.
QUICK: dict[str, dict[str, int]] = {
    "call_latency": {"n": 2_000},
    "cast_throughput": {"n": 20_000},
    "fan_in": {"clients": 20, "calls": 50},
    "spawn": {"n": 1_000},
    "ping_pong": {"n": 5_000},
    "selective_receive": {"n": 2_000, "backlog": 2_000},
    "backlog_await": {"n": 50, "backlog": 10_000},
    "million": {"n": 20_000},
    "sync_call": {"n": 2_000},
    "sync_cast": {"n": 20_000},
}

#: Thread scenarios are much slower per message (a GIL hand-off per message), so
#: some of their sizes are scaled down; the figures are per message / per server
#: anyway.  10,000 OS threads take minutes to start and stop on 2 cores (the cost per
#: thread grows with the number of threads), so thread ``spawn`` uses 1,000.
THREAD_SCALE: dict[str, dict[str, int]] = {
    "ping_pong": {"n": 20_000},
    "spawn": {"n": 1_000},
}


def sizes(scenario: str, quick: bool, backend: str, million: int | None = None) -> dict[str, int]:
    """The sizes of ``scenario`` for this run."""
    s = dict((QUICK if quick else FULL)[scenario])
    if backend == "thread" and not quick and scenario in THREAD_SCALE:
        s.update(THREAD_SCALE[scenario])
    if scenario == "million" and million is not None:
        s["n"] = million
    return s


def warmup_sizes(s: dict[str, int]) -> dict[str, int]:
    """A tenth of every size (at least 1): used for the untimed warm-up round."""
    return {k: max(1, v // 10) for k, v in s.items()}


# -------------------------------------------------------------------------- memory

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Current resident set size of this process, from /proc/self/statm."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: peak RSS is the best we have (KiB on Linux, B on macOS)
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r if os.uname().sysname == "Darwin" else r * 1024


def mem_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -------------------------------------------------------------------------- rounds


@dataclass
class Round:
    """One measurement: metric name -> value, correctness errors, free-form notes."""

    metrics: dict[str, float]
    errors: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


def higher_is_better(metric: str) -> bool:
    """Throughput metrics are named ``*_per_s``; everything else is a cost."""
    return metric.endswith("_per_s")


def best_of(rounds: list[Round]) -> Round:
    """Best value of each metric over ``rounds``; all errors; notes of the best round
    of the first metric."""
    if not rounds:
        raise ValueError("no rounds")
    first = next(iter(rounds[0].metrics), None)
    if first is None:
        best_round = rounds[0]
    else:
        pick = max if higher_is_better(first) else min
        best_round = pick(rounds, key=lambda r: r.metrics[first])
    metrics: dict[str, float] = {}
    for name in rounds[0].metrics:
        values = [r.metrics[name] for r in rounds if name in r.metrics]
        metrics[name] = max(values) if higher_is_better(name) else min(values)
    errors: list[str] = []
    for r in rounds:
        for e in r.errors:
            if e not in errors:
                errors.append(e)
    return Round(metrics, errors, dict(best_round.notes))


def check_count(errors: list[str], what: str, got: object, want: object) -> None:
    """Record a correctness failure when ``got != want``."""
    if got != want:
        errors.append(f"{what}: got {got!r}, expected {want!r}")


# ----------------------------------------------------------------- early exit hook

#: Set by the worker: prints a round's result and leaves the process at once.
_exit_hook: list[Callable[[Round], None]] = []


def set_exit_hook(fn: Callable[[Round], None]) -> None:
    """Install the worker's "print this result and ``os._exit``" function."""
    _exit_hook[:] = [fn]


def exit_now(r: Round) -> Round:
    """Report ``r`` and exit the process without tearing anything down.

    The ``million`` scenario calls this while its processes are still alive: the
    teardown of a million tasks is not what it measures, and would take longer than
    the measurement.  Without a hook installed it simply returns ``r``.
    """
    for fn in _exit_hook:
        fn(r)
    return r
