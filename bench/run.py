"""anyotp benchmark suite: run every scenario in a fresh subprocess, print a table.

Usage::

    python bench/run.py [--quick] [--only SCENARIO[,..]] [--backends asyncio,uvloop,trio,thread]
                        [--repeat N] [--million N] [--million-trio] [--json out.json]

Each (scenario, backend, implementation) runs in its own ``bench/worker.py``
subprocess, which prints one JSON line.  The raw baseline of the same backend always
runs in the same invocation, right before the implementations it is compared with:
only the ratios are meaningful on a noisy machine.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import Round, best_of, mem_available_bytes  # noqa: E402

SCENARIOS = [
    "call_latency",
    "cast_throughput",
    "fan_in",
    "spawn",
    "ping_pong",
    "selective_receive",
    "backlog_await",
    "million",
    "sync_call",
    "sync_cast",
]
ASYNC_BACKENDS = ["asyncio", "uvloop", "trio"]
ALL_BACKENDS = [*ASYNC_BACKENDS, "thread"]

#: scenario -> {"async": impls on each async backend, "thread": impls on threads}.
#: The first impl listed is the baseline the others are divided by.
PLAN: dict[str, dict[str, list[str]]] = {
    "call_latency": {
        "async": ["raw", "anyotp", "anyotp-timeout-none", "fauxtp"],
        "thread": ["raw", "pykka"],
    },
    "cast_throughput": {
        "async": ["raw", "anyotp", "anyotp-await-cast", "fauxtp"],
        "thread": ["raw", "pykka"],
    },
    "fan_in": {"async": ["raw", "anyotp", "fauxtp"], "thread": ["raw", "pykka"]},
    "spawn": {
        "async": [
            "raw",
            "anyotp-tg-cancel",
            "anyotp-exit-process",
            "anyotp-handle-stop",
            "fauxtp",
        ],
        "thread": ["raw", "pykka"],
    },
    "ping_pong": {"async": ["raw", "anyotp", "fauxtp"], "thread": ["raw", "pykka"]},
    "selective_receive": {"async": ["anyotp-no-backlog", "anyotp-backlog"]},
    "backlog_await": {"async": ["anyotp-no-backlog", "anyotp-backlog"]},
    "million": {"async": ["raw", "anyotp"]},
    # ---- sync API (anyotp.sync): skipped rows until `import anyotp.sync` works ----
    "sync_call": {"thread": ["raw", "anyotp.sync", "anyotp.sync-timeout-5"]},
    "sync_cast": {"thread": ["raw", "anyotp.sync"]},
}

#: Scenarios whose every repeat runs in a fresh process (memory figures, huge sizes),
#: and whose default repeat count is 1.
FRESH_PER_REPEAT = {"spawn", "million"}
#: Peers are informational: by default they run once (no best-of), to save time.
PEERS = {"fauxtp", "pykka"}
#: anyotp rows shown against another anyotp row of the same run instead of a target:
#: impl -> (the impl it is divided by, its label in Notes).
VERSUS: dict[str, tuple[str, str]] = {"anyotp-await-cast": ("anyotp", "cast_nowait")}

#: metric -> unit shown in the table
UNITS = {
    "us_per_call": "µs/call",
    "msgs_per_s": "msg/s",
    "calls_per_s": "calls/s",
    "us_per_start_stop": "µs/start+call+stop",
    "kib_per_server": "KiB/idle server",
    "round_trips_per_s": "round trips/s",
    "ms": "ms for all receives",
    "us_per_await": "µs/await",
    "spawns_per_s": "spawns/s",
    "rss_gib": "GiB RSS total",
    "kib_per_process": "KiB/process",
    "live": "live servers",
}

#: (scenario, metric) -> (kind, bound).  "max"/"min" bound the ratio to the baseline;
#: "abs_max"/"abs_min" bound the figure itself.  Only anyotp rows are judged.
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("call_latency", "us_per_call"): ("max", 1.15),
    ("cast_throughput", "msgs_per_s"): ("min", 1.2),
    ("fan_in", "calls_per_s"): ("min", 0.9),
    ("spawn", "us_per_start_stop"): ("max", 2.0),
    ("spawn", "kib_per_server"): ("max", 1.5),
    ("ping_pong", "round_trips_per_s"): ("min", 0.9),
    ("selective_receive", "ms"): ("max", 2.0),
    ("backlog_await", "us_per_await"): ("max", 2.0),
    ("million", "spawns_per_s"): ("abs_min", 30_000),
    ("million", "rss_gib"): ("abs_max", 4.0),
    ("million", "live"): ("abs_min", 1_000_000),
    ("sync_call", "us_per_call"): ("max", 1.2),
    ("sync_cast", "msgs_per_s"): ("min", 0.8),
}
#: ``await cast`` may cost at most this much more than ``cast_nowait``.
AWAIT_CAST_MAX_COST = 1.3

MILLION = 1_000_000
X = "\N{MULTIPLICATION SIGN}"
MIN_FREE_FOR_MILLION = 10 * 2**30

#: Seconds one worker may take before it is killed and reported as an error.
CHILD_TIMEOUT = {"million": 480.0, "spawn": 240.0}
DEFAULT_CHILD_TIMEOUT = 180.0


@dataclass
class Row:
    scenario: str
    backend: str
    impl: str
    label: str
    metric: str = ""
    value: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    status: str = ""
    notes: str = ""
    seconds: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- labels


def _git_state() -> str:
    """``<short commit>`` of the repo, ``+dirty`` if src/ has uncommitted changes."""
    root = BENCH.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def label(scenario: str, backend: str, impl: str, size: dict[str, int]) -> str:
    if impl == "raw":
        return {
            "asyncio": "raw asyncio.Queue+Future",
            "uvloop": "raw asyncio.Queue+Future",
            "trio": "raw mem. channel+Event",
            "thread": "raw queue.Queue+thread",
        }[backend]
    if impl in PEERS:
        return f"{impl} {_version(impl)}"
    if impl == "anyotp-backlog":
        return f"anyotp, {size.get('backlog', 0):,} backlog"
    return {
        "anyotp": "anyotp (cast_nowait)" if scenario == "cast_throughput" else "anyotp",
        "anyotp-await-cast": "anyotp (await cast)",
        "anyotp-timeout-none": "anyotp (timeout=None)",
        "anyotp-tg-cancel": "anyotp, stop: tg cancel",
        "anyotp-exit-process": "anyotp, stop: exit_process",
        "anyotp-handle-stop": "anyotp, stop: ActorHandle.stop",
        "anyotp-no-backlog": "anyotp, no backlog",
        "anyotp.sync": "anyotp.sync",
        "anyotp.sync-timeout-5": "anyotp.sync (timeout=5.0)",
    }.get(impl, impl)


# ----------------------------------------------------------------- the plan


@dataclass
class Job:
    scenario: str
    backend: str
    impls: list[str]
    note: str = ""


def available_backends() -> list[str]:
    out = ["asyncio"]
    if importlib.util.find_spec("uvloop") is not None:
        out.append("uvloop")
    if importlib.util.find_spec("trio") is not None:
        out.append("trio")
    out.append("thread")
    return out


def build_plan(args: argparse.Namespace) -> tuple[list[Job], list[str]]:
    """Jobs to run, and notes about what was left out."""
    notes: list[str] = []
    avail = available_backends()
    if args.backends:
        wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
        for b in wanted:
            if b not in ALL_BACKENDS:
                sys.exit(f"unknown backend {b!r}; choose from {','.join(ALL_BACKENDS)}")
            if b not in avail:
                notes.append(f"backend {b} skipped: not importable")
        backends = [b for b in wanted if b in avail]
    else:
        backends = avail
        for b in ALL_BACKENDS:
            if b not in avail:
                notes.append(f"backend {b} skipped: not importable")
    scenarios = SCENARIOS
    if args.only:
        scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
        for s in scenarios:
            if s not in PLAN:
                sys.exit(f"unknown scenario {s!r}; choose from {','.join(SCENARIOS)}")
    jobs: list[Job] = []
    for s in SCENARIOS:
        if s not in scenarios:
            continue
        for b in backends:
            kind = "thread" if b == "thread" else "async"
            impls = PLAN[s].get(kind)
            if not impls:
                continue
            if s == "million":
                if b == "uvloop":
                    continue
                if b == "trio" and not args.million_trio:
                    notes.append("million: trio not run by default (add --million-trio)")
                    continue
                if b == "trio":
                    impls = ["anyotp"]  # raw trio at 1M doubles the time; asyncio has one
            jobs.append(Job(s, b, list(impls)))
    return jobs, notes


# ------------------------------------------------------------------ running


def run_worker(
    scenario: str, backend: str, impl: str, args: argparse.Namespace
) -> tuple[dict[str, Any], float]:
    """One fresh ``worker.py`` process: its JSON payload and the wall time it took."""
    cmd = [sys.executable, str(BENCH / "worker.py"), scenario, backend, impl, "--repeat", "1"]
    if args.quick:
        cmd.append("--quick")
    if args.million is not None:
        cmd += ["--million", str(args.million)]
    timeout = CHILD_TIMEOUT.get(scenario, DEFAULT_CHILD_TIMEOUT)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}, time.perf_counter() - t0
    dt = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                payload: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            if proc.returncode not in (0, None) and "error" not in payload:
                payload["error"] = f"worker exited with status {proc.returncode}"
            return payload, dt
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"worker exited with status {proc.returncode}: {tail}"}, dt


def repeats_for(scenario: str, impl: str, args: argparse.Namespace) -> int:
    if args.repeat is not None:
        return max(1, args.repeat)
    if scenario in FRESH_PER_REPEAT or impl in PEERS or args.quick:
        return 1
    return 3


def measure_job(
    job: Job, args: argparse.Namespace, tick: Callable[[str, float, str], None]
) -> dict[str, tuple[dict[str, Any], float]]:
    """Measure every impl of ``job``: best of N fresh worker processes each.

    The repeats are interleaved (raw, anyotp, ..., raw, anyotp, ...) so that a burst
    of load from elsewhere on the machine hits every implementation alike.
    """
    reps = {impl: repeats_for(job.scenario, impl, args) for impl in job.impls}
    good: dict[str, list[dict[str, Any]]] = {impl: [] for impl in job.impls}
    bad: dict[str, dict[str, Any]] = {}
    seconds = dict.fromkeys(job.impls, 0.0)
    for rep in range(max(reps.values())):
        for impl in job.impls:
            if rep >= reps[impl] or impl in bad:
                continue
            payload, dt = run_worker(job.scenario, job.backend, impl, args)
            seconds[impl] += dt
            if "metrics" in payload:
                good[impl].append(payload)
                tick(impl, dt, "ok")
            else:
                bad[impl] = payload
                tick(impl, dt, str(payload.get("skipped") or payload.get("error")))
    out: dict[str, tuple[dict[str, Any], float]] = {}
    for impl in job.impls:
        if impl in bad:
            out[impl] = (bad[impl], seconds[impl])
            continue
        payloads = good[impl]
        rounds = [Round(p["metrics"], p.get("errors", []), p.get("notes", {})) for p in payloads]
        best = best_of(rounds)
        merged = dict(payloads[0])
        merged.update(metrics=best.metrics, errors=best.errors, notes=best.notes)
        merged["runs"] = [p["metrics"] for p in payloads]
        out[impl] = (merged, seconds[impl])
    return out


# ----------------------------------------------------------------- judging


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def judge(row: Row, baseline: dict[str, float] | None, size: dict[str, int]) -> None:
    """Fill ``ratio``, ``target`` and ``status`` of a measured row."""
    if baseline is not None and row.value is not None and baseline.get(row.metric):
        row.ratio = row.value / baseline[row.metric]
    kind, bound = TARGETS.get((row.scenario, row.metric), ("", 0.0))
    is_anyotp = row.impl.startswith("anyotp") and row.impl not in VERSUS
    if not kind:
        row.status = "info"
        return
    if kind == "max":
        row.target = f"≤ {bound:g}{X} " + (
            "no backlog" if row.scenario in ("selective_receive", "backlog_await") else "raw"
        )
    elif kind == "min":
        row.target = f"≥ {bound:g}{X} raw"
    if row.scenario == "million":
        row.target = {
            "spawns_per_s": f"≥ {bound:,.0f}/s",
            "rss_gib": f"≤ {bound:g} GiB at 1M",
            "live": f"{MILLION:,}",
        }[row.metric]
    if not is_anyotp:
        row.status = "info"
        if row.scenario == "million" or kind in ("max", "min"):
            row.target = ""
        return
    if kind in ("max", "min"):
        if row.ratio is None:
            row.status = "n/a"
            return
        ok = row.ratio <= bound if kind == "max" else row.ratio >= bound
        row.status = "PASS" if ok else "MISS"
        return
    # absolute targets (million)
    value = row.value
    if value is None:
        row.status = "n/a"
        return
    n = size.get("n", MILLION)
    if row.metric == "live":
        if n < MILLION:
            row.status = "n/a"
            row.notes = f"only {n:,} started (full size: --million {MILLION})"
        else:
            row.status = "PASS" if value >= bound else "MISS"
        return
    if row.metric == "rss_gib" and n < MILLION:
        kib = row.raw.get("metrics", {}).get("kib_per_process", 0.0)
        base = value - kib * n / 2**20
        value = base + kib * MILLION / 2**20
        row.notes = f"projected to 1M: {value:.2f} GiB"
    ok = value >= bound if kind == "abs_min" else value < bound
    row.status = "PASS" if ok else "MISS"


def rows_for(job_impl: str, payload: dict[str, Any], seconds: float, job: Job) -> list[Row]:
    size = payload.get("size", {})
    base = Row(
        job.scenario, job.backend, job_impl, label(job.scenario, job.backend, job_impl, size)
    )
    base.seconds = seconds
    base.raw = payload
    if "skipped" in payload:
        base.status = "SKIP"
        base.notes = "skipped: " + str(payload["skipped"]).split(" (", 1)[0]
        return [base]
    if "error" in payload:
        base.status = "ERROR"
        base.notes = str(payload["error"])
        return [base]
    rows = []
    notes = payload.get("notes", {})
    for metric, value in payload["metrics"].items():
        r = Row(**{**asdict(base), "raw": payload})
        r.metric = metric
        r.value = value
        r.unit = UNITS.get(metric, metric)
        extra = []
        if metric == "us_per_start_stop" and "start" in notes:
            extra.append(f"start+call {notes['start']:.1f}, stop {notes['stop']:.1f} µs")
        if metric == "us_per_call" and "reply" in notes:
            others = ", ".join(f"{k}: {v:.1f} µs" for k, v in notes.get("others", {}).items())
            extra.append(f"reply via {notes['reply']} (faster; {others})")
        if metric == "ms" and "us_per_receive" in notes:
            extra.append(f"{size.get('n', 0):,} receives, {notes['us_per_receive']:.2f} µs each")
        if metric in ("spawns_per_s", "live") and "n" in size:
            extra.append(f"N={size['n']:,}")
        r.notes = "; ".join(extra)
        rows.append(r)
    if payload.get("errors"):
        for r in rows:
            r.status = "FAIL"
            r.notes = "FAILED: " + "; ".join(payload["errors"])
    return rows


# ------------------------------------------------------------------- output


COLUMNS = [
    "Scenario",
    "Backend",
    "Implementation",
    "Figure",
    "Unit",
    "vs base",
    "Target",
    "Result",
    "Notes",
]


def _cells(r: Row) -> list[str]:
    return [
        r.scenario,
        r.backend,
        r.label,
        _fmt(r.value),
        r.unit,
        "-" if r.ratio is None else f"{r.ratio:.2f}{X}",
        r.target,
        r.status,
        r.notes,
    ]


def print_table(rows: list[Row]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(rows)
        return
    styles = {"PASS": "green", "MISS": "yellow", "FAIL": "bold red", "ERROR": "bold red"}
    table = Table(title="anyotp benchmarks (ratios against the baseline of the same backend)")
    for c in COLUMNS:
        table.add_column(c, no_wrap=c not in ("Notes", "Implementation"))
    prev = None
    for r in rows:
        if prev is not None and r.scenario != prev:
            table.add_section()
        prev = r.scenario
        cells = _cells(r)
        style = styles.get(r.status)
        if style:
            cells[7] = f"[{style}]{cells[7]}[/{style}]"
        table.add_row(*cells)
    Console(width=_table_width()).print(table)


def _table_width() -> int:
    """The terminal's width (at least 160), or 200 when output goes to a file/pipe."""
    if not sys.stdout.isatty():
        return 200
    try:
        return max(160, os.get_terminal_size().columns)
    except OSError:
        return 200


def _print_plain(rows: list[Row]) -> None:
    cells = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS) - 1)]
    for i, c in enumerate(cells):
        line = "  ".join(x.ljust(w) for x, w in zip(c, widths, strict=False))
        print(f"{line}  {c[-1]}")
        if i == 0:
            print("-" * (sum(widths) + 2 * len(widths) + 5))


def summary(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if r.status == "MISS":
            how = ""
            kind, bound = TARGETS.get((r.scenario, r.metric), ("", 0.0))
            if kind == "max" and r.ratio is not None:
                how = (
                    f"{r.ratio:.2f}{X} vs ≤ {bound:g}{X} ({r.ratio / bound:.2f}{X} over the target)"
                )
            elif kind == "min" and r.ratio is not None:
                how = f"{r.ratio:.2f}{X} vs ≥ {bound:g}{X} ({r.ratio / bound:.2f} of the target)"
            elif r.value is not None:
                how = f"{_fmt(r.value)} {r.unit} vs target {r.target}"
            out.append(f"MISS  {r.scenario}/{r.backend}/{r.label}/{r.unit}: {how}")
        elif r.status in ("FAIL", "ERROR"):
            out.append(f"{r.status}  {r.scenario}/{r.backend}/{r.label}: {r.notes}")
    return out


# --------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="anyotp benchmark suite (see bench/README.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="scaled-down sizes: a smoke run")
    p.add_argument("--only", help=f"comma-separated scenarios: {','.join(SCENARIOS)}")
    p.add_argument(
        "--backends",
        help="comma-separated, from asyncio,uvloop,trio,thread (default: all importable)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="best of N (default 3 for fast scenarios, 1 for spawn/million, peers and --quick)",
    )
    p.add_argument("--million", type=int, default=None, help="N for the million scenario")
    p.add_argument("--million-trio", action="store_true", help="also run million on trio")
    p.add_argument("--json", help="also write every row (and the raw worker output) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    git = _git_state()
    jobs, plan_notes = build_plan(args)
    started = time.perf_counter()
    rows: list[Row] = []
    n_runs = sum(repeats_for(j.scenario, impl, args) for j in jobs for impl in j.impls)
    done = [0]
    for job in jobs:
        if job.scenario == "million":
            free = mem_available_bytes()
            if free is not None and free < MIN_FREE_FOR_MILLION and not args.quick:
                rows.append(
                    Row(
                        "million",
                        job.backend,
                        "anyotp",
                        "anyotp",
                        status="SKIP",
                        notes=f"skipped: only {free / 2**30:.1f} GiB available (< 10 GiB)",
                    )
                )
                done[0] += sum(repeats_for(job.scenario, impl, args) for impl in job.impls)
                continue

        def tick(impl: str, dt: float, status: str, job: Job = job) -> None:
            done[0] += 1
            what = f"{job.scenario} {job.backend} {impl}"
            print(f"[{done[0]}/{n_runs}] {what}: {dt:.1f} s ({status})", file=sys.stderr)

        results = measure_job(job, args, tick)
        baseline: dict[str, float] | None = None
        for impl in job.impls:
            payload, dt = results[impl]
            new = rows_for(impl, payload, dt, job)
            if impl == job.impls[0]:
                baseline = payload.get("metrics")
                for r in new:
                    if r.status not in ("FAIL", "ERROR", "SKIP"):
                        r.status = "base"
                        r.ratio = 1.0 if r.value is not None else None
            else:
                for r in new:
                    if r.status not in ("FAIL", "ERROR", "SKIP"):
                        keep = r.notes
                        judge(r, baseline, payload.get("size", {}))
                        if keep and r.notes != keep:
                            r.notes = f"{keep}; {r.notes}" if r.notes else keep
            rows.extend(new)
        _mark_fastest_stop(rows, job)
        _note_versus(rows, job)
    elapsed = time.perf_counter() - started

    print_table(rows)
    print(
        f"\n{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"anyio {_version('anyio')}, trio {_version('trio')}, uvloop {_version('uvloop')}; "
        f"anyotp at {git}; {'quick' if args.quick else 'full'} run in {elapsed:.0f} s"
    )
    for note in dict.fromkeys(plan_notes):
        print(f"note: {note}")
    problems = summary(rows)
    if problems:
        print("\nTargets missed / failures:")
        for line in problems:
            print(f"  {line}")
    else:
        print("\nAll targets met.")
    if args.json:
        meta = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "git": git,
            "elapsed_s": elapsed,
            "versions": {
                d: _version(d) for d in ("anyotp", "anyio", "trio", "uvloop", "fauxtp", "pykka")
            },
            "notes": list(dict.fromkeys(plan_notes)),
        }
        Path(args.json).write_text(
            json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
        )
        print(f"wrote {args.json}")
    return 1 if any(r.status in ("FAIL", "ERROR") for r in rows) else 0


def _note_versus(rows: list[Row], job: Job) -> None:
    """For rows in VERSUS (``await cast``), note their figure against the row they are
    compared with (``cast_nowait``), measured in the same run."""
    mine = [r for r in rows if r.scenario == job.scenario and r.backend == job.backend]
    for r in mine:
        if r.impl not in VERSUS or r.value is None or r.status in ("FAIL", "ERROR"):
            continue
        other, name = VERSUS[r.impl]
        ref = [x for x in mine if x.impl == other and x.metric == r.metric and x.value]
        if not ref:
            continue
        ratio = r.value / (ref[0].value or 1.0)
        note = f"{ratio:.2f}{X} {name}"
        if r.impl == "anyotp-await-cast":  # a rate: within 1.3x the cost is >= 1/1.3
            ok = ratio >= 1 / AWAIT_CAST_MAX_COST
            note += f" (target ≥ {1 / AWAIT_CAST_MAX_COST:.2f}{X}: {'PASS' if ok else 'MISS'})"
        r.notes = f"{note}; {r.notes}" if r.notes else note
        r.raw.setdefault("versus", {})[name] = ratio


def _mark_fastest_stop(rows: list[Row], job: Job) -> None:
    """For spawn, point out which anyotp stop method was fastest on this backend."""
    if job.scenario != "spawn":
        return
    cands = [
        r
        for r in rows
        if r.scenario == "spawn"
        and r.backend == job.backend
        and r.impl.startswith("anyotp")
        and r.metric == "us_per_start_stop"
        and r.value is not None
        and r.status not in ("FAIL", "ERROR")
    ]
    if len(cands) > 1:
        best = min(cands, key=lambda r: r.value or 0.0)
        best.notes = f"{best.notes}; fastest anyotp stop" if best.notes else "fastest anyotp stop"


if __name__ == "__main__":
    sys.exit(main())
