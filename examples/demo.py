"""anyotp demo: a supervised, crash-tolerant Python source analyser.

Parses every ``.py`` file under a directory (by default the standard library's own
source tree) with a pool of worker processes and prints what it found.  The stdlib
ships deliberately broken files (``lib2to3/tests/data``, ``test/tokenizedata``):
the worker that meets one simply crashes, its supervisor restarts it, and the
dispatcher, which monitors every worker, records the file as failed.  Let it crash.

Supervision tree::

    App (REST_FOR_ONE)
    |-- Aggregator   GenServer: totals, failures, crash count  ("demo.aggregator")
    |-- Dispatcher   GenServer: the queue; monitors workers     ("demo.dispatcher")
    `-- WorkerPool   Supervisor (ONE_FOR_ONE, transient workers)
        `-- Worker x N   Actor: call "next" -> parse -> cast the result

Run::

    python examples/demo.py [PATH] [--workers N] [--backend asyncio|trio]
                            [--limit N] [--no-progress]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import functools
import io
import logging
import os
import sys
import sysconfig
import time
import tokenize
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import anyio

from anyotp import (
    PID,
    Actor,
    CallError,
    ChildSpec,
    From,
    GenServer,
    RestartStrategy,
    RestartType,
    Supervisor,
    call,
    cast,
    is_alive,
    monitor,
    register,
)

try:  # rich is the demo extra; without it the demo prints plain text
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
except ImportError:  # pragma: no cover
    Console = None  # type: ignore[assignment,misc]

AGGREGATOR = "demo.aggregator"
DISPATCHER = "demo.dispatcher"
#: what decoding and ast.parse raise on a bad file: expected crashes, logged quietly
#: (plain ValueError: "source code string cannot contain null bytes" before 3.11.4)
EXPECTED_CRASHES = (SyntaxError, UnicodeDecodeError)
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}  # third-party, caches
demo_log = logging.getLogger("demo")


# ------------------------------------------------------------------ the actual work


@dataclass(frozen=True)
class FileStats:
    lines: int
    functions: int
    async_functions: int
    classes: int
    imports: int


def analyse(path: str) -> FileStats:
    """Decode and parse one file.  Raises on a bad file; nobody catches it."""
    with open(path, "rb") as f:
        data = f.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # PEP 263 cookie
    text = data.decode(encoding)  # UnicodeDecodeError
    kinds = Counter(type(node) for node in ast.walk(ast.parse(text, path)))  # SyntaxError
    return FileStats(
        lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        functions=kinds[ast.FunctionDef],
        async_functions=kinds[ast.AsyncFunctionDef],
        classes=kinds[ast.ClassDef],
        imports=kinds[ast.Import] + kinds[ast.ImportFrom],
    )


@dataclass
class Summary:
    """The Aggregator's state; snapshots of it are what the main task sees."""

    total: int
    ok: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, error type)
    lines: int = 0
    functions: int = 0
    async_functions: int = 0
    classes: int = 0
    imports: int = 0
    crashes: int = 0  # abnormal worker exits seen by the dispatcher
    hidden_logs: int = 0  # expected crash reports kept off the screen by CrashFilter
    restarts: int = 0  # workers started by a restart: worker PIDs seen beyond the first N
    seconds: float = 0.0
    backend: str = ""
    accounted: set[str] = field(default_factory=set, repr=False)

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def files_per_second(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


# ------------------------------------------------------------------------ processes


class Aggregator(GenServer):
    """Collects per-file results.  Each file counts once (first report wins): a file
    requeued after its worker was shut down may be reported twice."""

    async def init(self, total: int) -> Summary:
        register(AGGREGATOR, self.pid)
        return Summary(total=total)

    async def handle_cast(self, request: Any, state: Summary) -> Summary:
        # The state never leaves this process (snapshots are copies), so updating it
        # in place is safe: handlers run one message at a time.
        match request:
            case ("ok", path, stats) if path not in state.accounted:
                state.accounted.add(path)
                state.ok += 1
                for name, value in dataclasses.asdict(stats).items():
                    setattr(state, name, getattr(state, name) + value)
            case ("crash", path, error):
                state.crashes += 1
                if path is not None and path not in state.accounted:
                    state.accounted.add(path)
                    state.failed += 1
                    state.failures.append((path, error))
        return state

    async def handle_call(self, request: Any, from_: From, state: Summary) -> Any:
        if request == "snapshot":
            copy = dataclasses.replace(
                state, failures=list(state.failures), accounted=set(state.accounted)
            )
            return copy, state
        return await super().handle_call(request, from_, state)


@dataclass
class WorkQueue:
    todo: deque[str]
    holding: dict[PID, str] = field(default_factory=dict)  # worker -> its current file
    seen: set[PID] = field(default_factory=set)  # every worker that ever asked


class Dispatcher(GenServer):
    """Hands out one path per ``call(DISPATCHER, "next")``; accounts for crashed workers."""

    async def init(self, paths: list[str]) -> WorkQueue:
        register(DISPATCHER, self.pid)
        return WorkQueue(deque(paths))

    async def handle_call(self, request: Any, from_: From, state: WorkQueue) -> Any:
        if request == "workers_seen":
            return len(state.seen), state
        if request != "next":
            return await super().handle_call(request, from_, state)
        worker = from_.pid
        assert worker is not None, "workers are processes"
        state.holding.pop(worker, None)  # it reported its previous file before asking
        if worker not in state.seen:
            state.seen.add(worker)
            monitor(worker)  # its DOWN message tells us if it dies holding a file
        if not state.todo:
            return None, state
        path = state.holding[worker] = state.todo.popleft()
        return path, state

    async def handle_info(self, message: Any, state: WorkQueue) -> WorkQueue:
        match message:
            case ("DOWN", _ref, "process", worker, reason):
                path = state.holding.pop(worker, None)
                if reason in ("normal", "shutdown", "noproc"):  # stopped, not crashed
                    if path is not None:
                        state.todo.appendleft(path)  # e.g. the pool was restarted
                else:
                    await cast(AGGREGATOR, ("crash", path, type(reason).__name__))
                return state
        return await super().handle_info(message, state)


class Worker(Actor):
    """Pulls paths until the queue is empty, then exits normally (``transient``)."""

    async def run(self, state: None) -> None:
        path = await call(DISPATCHER, "next", timeout=None)  # a dead dispatcher fails it at once
        if path is None:
            self.stop()  # "normal": a transient child is not restarted
        # Let it crash: a SyntaxError here kills this worker, and only this worker.
        # Parsed inline, not in anyio.to_thread: ast.parse holds the GIL, so threads
        # add no parallelism, and on 2 cores they measured 15-45% slower (GIL
        # hand-offs).  The longest stdlib file blocks the loop for ~0.15 s: the
        # progress bar just updates a little late.
        stats = analyse(path)
        await cast(AGGREGATOR, ("ok", path, stats))
        return state


class WorkerPool(Supervisor):
    strategy = RestartStrategy.ONE_FOR_ONE
    max_restarts = 1000  # a burst of bad files must not look like a broken pool
    max_seconds = 1.0

    async def init(self, workers: int) -> Any:
        self.workers = workers  # child_specs() takes no arguments
        return await super().init()

    def child_specs(self) -> list[ChildSpec]:
        return [
            ChildSpec(id=f"worker{i}", actor_class=Worker, restart=RestartType.TRANSIENT)
            for i in range(self.workers)
        ]


class App(Supervisor):
    # REST_FOR_ONE: each child depends on the ones started before it.  A new
    # Aggregator means the Dispatcher's progress is meaningless; a new Dispatcher
    # means the workers' current files belong to a dead queue.  Restart those;
    # a crash of the pool alone never needs to disturb the queue or the totals.
    strategy = RestartStrategy.REST_FOR_ONE

    async def init(self, paths: list[str], workers: int) -> Any:
        self.paths, self.workers = paths, workers
        return await super().init()

    def child_specs(self) -> list[ChildSpec]:
        return [
            ChildSpec(id="aggregator", actor_class=Aggregator, args=(len(self.paths),)),
            ChildSpec(id="dispatcher", actor_class=Dispatcher, args=(self.paths,)),
            ChildSpec(id="workers", actor_class=WorkerPool, args=(self.workers,)),
        ]


# ----------------------------------------------------------------- main program


class CrashFilter(logging.Filter):
    """Hides the expected crash reports (bad files) and counts them; any other
    crash (a bug, an OSError...) still reaches the log with its traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, EXPECTED_CRASHES) or type(exc) is ValueError:
            self.hidden += 1
            demo_log.debug("expected crash: %s", record.getMessage())
            return False
        return True


class Reporter:
    """Progress from snapshots: a rich bar on a terminal, else a line every ~10%."""

    def __init__(self, total: int, fancy: bool) -> None:
        self.total, self.next_line = total, 0.0
        self.bar: Any = None
        if fancy and Console is not None and sys.stdout.isatty():
            self.bar = Progress(
                TextColumn("[bold]parsing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[crashes]} crashes"),
                TimeElapsedColumn(),
            )
            self.task = self.bar.add_task("parsing", total=total, crashes=0)
            self.bar.start()

    def update(self, snap: Summary) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=snap.done, crashes=snap.crashes)
        elif snap.done >= self.next_line or snap.done == self.total:
            print(f"{snap.done}/{self.total} files, {snap.crashes} crashes", flush=True)
            self.next_line = snap.done + max(1, self.total // 10)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def find_sources(root: str, limit: int | None) -> list[str]:
    if os.path.isfile(root):
        return [root]
    found: list[str] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        found += [os.path.join(here, f) for f in sorted(files) if f.endswith(".py")]
    return found[:limit] if limit is not None else found


async def run_demo(
    path: str, workers: int = 4, limit: int | None = None, progress: bool = True
) -> Summary:
    """Analyse ``path`` with a supervised worker pool; return the final totals."""
    paths = find_sources(path, limit)
    crash_filter = CrashFilter()
    anyotp_log = logging.getLogger("anyotp")
    anyotp_log.addFilter(crash_filter)
    reporter = Reporter(len(paths), progress)
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            app = await App.start(paths, workers, task_group=tg)
            snap = await wait_until_done(app, reporter)
            snap.restarts = await call(DISPATCHER, "workers_seen") - workers
            tg.cancel_scope.cancel()  # stops the whole tree, top-down, terminate and all
    finally:
        reporter.close()
        anyotp_log.removeFilter(crash_filter)
    snap.seconds = time.perf_counter() - started
    snap.failures.sort()
    snap.backend = _backend()
    snap.hidden_logs = crash_filter.hidden
    return snap


class AppStopped(Exception):
    """The root supervisor gave up: its children kept crashing faster than allowed."""


async def wait_until_done(app: PID, reporter: Reporter) -> Summary:
    """Poll the Aggregator ten times a second (a demo may poll) until every file is
    accounted for and every (transient) worker has exited normally, so that no
    restart is still pending."""
    while True:
        try:
            snap = await call(AGGREGATOR, "snapshot")
            reporter.update(snap)
            if snap.done == snap.total:
                pool = {c.id: c.pid for c in await Supervisor.which_children(app)}["workers"]
                if pool is not None and (await Supervisor.count_children(pool))["active"] == 0:
                    return snap
        except CallError:  # a child of App is being restarted, or App itself gave up
            if not is_alive(app):
                raise AppStopped("the application stopped: too many crashes, see the log") from None
        await anyio.sleep(0.1)


def _backend() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


def print_summary(s: Summary, path: str, shown: int = 10) -> None:
    rows = [
        ("files parsed", f"{s.ok:,}"),
        ("files failed", f"{s.failed:,}"),
        ("lines", f"{s.lines:,}"),
        ("functions", f"{s.functions:,}"),
        ("async functions", f"{s.async_functions:,}"),
        ("classes", f"{s.classes:,}"),
        ("imports", f"{s.imports:,}"),
        ("worker crashes", f"{s.crashes:,} ({s.hidden_logs:,} expected, not logged)"),
        ("worker restarts", f"{s.restarts:,}"),
        ("wall time", f"{s.seconds:.2f} s"),
        ("files per second", f"{s.files_per_second:,.0f}"),
        ("backend", s.backend),
    ]
    failures = [(os.path.relpath(p, path), error) for p, error in s.failures[:shown]]
    if len(s.failures) > shown:
        failures.append(("...", f"{len(s.failures) - shown} more"))
    title = f"anyotp demo: {path}"
    if Console is None:
        print(title)
        for name, value in rows + [(f"  failed: {p}", e) for p, e in failures]:
            print(f"  {name:<20} {value}")
        return
    console = Console()
    console.print(title, style="bold", highlight=False)
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if failures:
        failed = Table("failed file", "error", title="files that crashed their worker")
        for row in failures:
            failed.add_row(*row)
        console.print(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = sysconfig.get_paths()["stdlib"]
    parser.add_argument("path", nargs="?", default=default, help=f"default: {default}")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files")
    parser.add_argument("--no-progress", action="store_true", help="plain progress lines")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not os.path.exists(args.path):
        parser.error(f"{args.path}: no such file or directory")
    fancy = not args.no_progress and Console is not None and sys.stdout.isatty()
    handlers = [RichHandler(show_path=False)] if fancy else None  # logs above the bar
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", handlers=handlers)
    summary, status = None, 0
    try:
        run = functools.partial(run_demo, args.path, args.workers, args.limit, not args.no_progress)
        summary = anyio.run(run, backend=args.backend)
    except* AppStopped as group:
        print(group.exceptions[0], file=sys.stderr)
        status = 1
    except* KeyboardInterrupt:  # on trio it surfaces from whichever process was running
        print("interrupted: the supervision tree was shut down", file=sys.stderr)
        status = 130
    if summary is None:
        return status
    print_summary(summary, args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
