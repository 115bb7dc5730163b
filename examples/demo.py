"""anyotp demo: a supervised, crash-tolerant Python source analyser.

Parses every ``.py`` file under a directory (by default the standard library's own
source tree), or one file, and prints what it found.  Each file is parsed by its own
task, run by ``Task.async_stream`` under a ``TaskSupervisor`` with bounded
concurrency; the parsing itself runs in a worker thread, off the event loop, so the
progress display stays live and a task that hangs is killed at its timeout.  The stdlib
ships deliberately broken files (``lib2to3/tests/data``, ``test/tokenizedata``): the
task that meets one simply crashes, and the stream hands the crash back to the
coordinator as ``("exit", reason)``, which records the file as failed.  Let it crash.

Supervision tree::

    App (REST_FOR_ONE)
    |-- Aggregator      GenServer: totals, failures, crash count   ("demo.aggregator")
    |-- TaskSupervisor  a DynamicSupervisor of tasks, one per file      ("demo.tasks")
    `-- Coordinator     Actor (transient): Task.async_stream(paths, parse_file,
                        supervisor="demo.tasks"); casts each outcome to the Aggregator

Run::

    python examples/demo.py [PATH] [--workers N] [--backend asyncio|trio]
                            [--limit N] [--no-progress] [--observer [--port N]]
                            [--nodes N [--kill-node-after SECONDS]]

With ``--observer`` the application stays up after the analysis, with the web
observer on http://127.0.0.1:8090/ (``--port``), until Ctrl-C.  With ``--nodes N``
the same parse runs over N worker nodes (OS processes) and an embedded NATS server:
see ``examples/demo_nodes.py``.
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
import threading
import time
import tokenize
from collections import Counter
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
    NoProcess,
    RestartStrategy,
    RestartType,
    Supervisor,
    Task,
    TaskSupervisor,
    call,
    cast,
    is_alive,
)

try:  # rich is the demo extra; without it the demo prints plain text
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
except ImportError:  # pragma: no cover
    Console = None  # type: ignore[assignment,misc]

AGGREGATOR = "demo.aggregator"
TASKS = "demo.tasks"
#: seconds one file may take before its task is killed and the file counted as failed
TASK_TIMEOUT = 60.0
#: what decoding and ast.parse raise on a bad file: expected crashes, logged quietly
#: (plain ValueError: "source code string cannot contain null bytes" before 3.11.4)
EXPECTED_CRASHES = (SyntaxError, UnicodeDecodeError)
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}  # third-party, caches
demo_log = logging.getLogger("demo")
#: one ast.parse at a time (see parse_file)
_PARSE_LOCK = threading.Lock()


# ------------------------------------------------------------------ the actual work


@dataclass(frozen=True)
class FileStats:
    lines: int
    functions: int
    async_functions: int
    classes: int
    imports: int


def parse_file(path: str) -> FileStats:
    """Decode and parse one file (blocking; it runs in a worker thread, see
    :func:`parse_in_thread`).  Raises on a bad file, and nobody catches it: the task
    crashes, and the stream reports ``("exit", error)``.

    Reading and decoding run concurrently; ``ast.parse`` runs one at a time under a
    lock.  It holds the GIL, so more at once would add no speed, and on CPython 3.11
    concurrent ``ast.parse`` calls in threads sometimes fail with a spurious
    "SystemError: AST constructor recursion depth mismatch".
    """
    with open(path, "rb") as f:
        data = f.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # PEP 263 cookie
    text = data.decode(encoding)  # UnicodeDecodeError
    with _PARSE_LOCK:
        tree = ast.parse(text, path)  # SyntaxError
        kinds = Counter(type(node) for node in ast.walk(tree))
    return FileStats(
        lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        functions=kinds[ast.FunctionDef],
        async_functions=kinds[ast.AsyncFunctionDef],
        classes=kinds[ast.ClassDef],
        imports=kinds[ast.Import] + kinds[ast.ImportFrom],
    )


async def parse_in_thread(path: str) -> FileStats:
    """The body of one task: :func:`parse_file` in a worker thread, off the event loop.

    The loop stays free while a file is parsed (the longest stdlib file takes ~0.15 s),
    so the progress display keeps moving, and a task that hangs can be killed at its
    timeout: the kill cancels this wait at once (``abandon_on_cancel``), and the thread,
    which cannot be interrupted, finishes on its own with its result discarded.
    """
    return await anyio.to_thread.run_sync(parse_file, path, abandon_on_cancel=True)


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
    crashes: int = 0  # tasks that raised (one task per file, so: files that crashed)
    timeouts: int = 0  # tasks killed after TASK_TIMEOUT seconds
    expected_crashes: int = 0  # bad files: recorded as failed, not logged
    coordinator_starts: int = 0  # > 1: the Coordinator crashed and was restarted
    workers: int = 0  # most tasks at once (the stream's max_concurrency)
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


def _error_name(reason: Any) -> str:
    """An exit reason as the failures table shows it: the exception's type name."""
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)


class Aggregator(GenServer):
    """Collects per-file outcomes.  Each file counts once (first report wins): a
    restarted Coordinator skips the files already accounted for, so a duplicate is
    not expected, but the totals must never depend on that."""

    async def init(self, total: int) -> Summary:
        self.wake: anyio.Event | None = None  # set when every file is accounted for
        return Summary(total=total)

    async def handle_cast(self, request: Any, state: Summary) -> Summary:
        # The state never leaves this process (snapshots are copies), so updating it
        # in place is safe: handlers run one message at a time.
        match request:
            case "coordinator_started":
                state.coordinator_starts += 1
            case ("ok", path, stats) if path not in state.accounted:
                state.accounted.add(path)
                state.ok += 1
                for name, value in dataclasses.asdict(stats).items():
                    setattr(state, name, getattr(state, name) + value)
            case ("exit", path, reason) if path not in state.accounted:
                state.accounted.add(path)
                state.failed += 1
                state.failures.append((path, _error_name(reason)))
                if reason == "timeout":
                    state.timeouts += 1
                elif isinstance(reason, BaseException):
                    state.crashes += 1
                    # The stream delivered the failure here, so the runtime did not log
                    # it; a bad file is expected, anything else is logged in full.
                    if isinstance(reason, EXPECTED_CRASHES) or type(reason) is ValueError:
                        state.expected_crashes += 1
                    else:
                        demo_log.error("parsing %s failed: %r", path, reason, exc_info=reason)
        self._maybe_wake(state)
        return state

    async def handle_call(self, request: Any, from_: From, state: Summary) -> Any:
        match request:
            case ("snapshot", anyio.Event() as wake):
                # `wake` is set as soon as the last file is accounted for, so the main
                # task need not poll faster than its progress bar refreshes.
                self.wake = wake
                self._maybe_wake(state)
                copy = dataclasses.replace(
                    state, failures=list(state.failures), accounted=set(state.accounted)
                )
                return copy, state
            case "accounted":
                return frozenset(state.accounted), state
        return await super().handle_call(request, from_, state)

    def _maybe_wake(self, state: Summary) -> None:
        if self.wake is not None and state.done >= state.total:
            self.wake.set()
            self.wake = None


class Coordinator(Actor):
    """Maps ``parse_file`` over the paths with ``Task.async_stream`` and reports each
    outcome to the Aggregator; exits normally (``transient``: not restarted) when the
    stream is exhausted.

    ``supervisor=`` makes the tasks children of the TaskSupervisor (a
    DynamicSupervisor whose children are temporary tasks), not linked to this actor
    (Elixir's ``Task.Supervisor.async_stream_nolink``): a crashed task comes back as
    ``("exit", reason)`` instead of crashing the Coordinator.

    ``ordered=True``, because it is the only correct way to know *which* file failed:
    the stream yields ``("exit", reason)`` without its input item, and a reason does
    not always name the file (a SyntaxError does, a UnicodeDecodeError does not).  In
    input order, the n-th outcome belongs to the n-th path.  It costs little here:
    one ast.parse runs at a time, so the tasks finish in about start order anyway.
    """

    async def init(self, paths: list[str], workers: int) -> None:
        self.paths, self.workers = paths, workers
        await cast(AGGREGATOR, "coordinator_started")

    async def run(self, state: None) -> None:
        # After a restart (the Coordinator crashed mid-stream), resume: skip the files
        # whose outcome the Aggregator already has.  The casts of the crashed
        # incarnation were queued before this call, so the answer includes them.
        try:
            done = await call(AGGREGATOR, "accounted")
        except CallError:  # the Aggregator just died: see report()
            self.stop("shutdown")
            return
        todo = [p for p in self.paths if p not in done]
        stream = Task.async_stream(
            todo,
            parse_in_thread,
            max_concurrency=self.workers,
            ordered=True,
            # A safety net for a task that hangs (a huge or pathological file): the
            # parsing runs in a thread, so the loop is free to enforce the deadline,
            # counted from the task's start.
            timeout=TASK_TIMEOUT,
            on_timeout="kill_task",  # yield ("exit", "timeout") for it; don't stop all
            supervisor=TASKS,
        )
        paths = iter(todo)
        async with stream:  # leaving early (a crash, a shutdown) stops the running tasks
            async for status, value in stream:
                await self.report(next(paths), status, value)
        self.stop()  # "normal": a transient child is not restarted

    async def report(self, path: str, status: str, value: Any) -> None:
        try:
            await cast(AGGREGATOR, (status, path, value))
        except NoProcess:
            # The Aggregator died between two files (the tasks run in threads, so the
            # stream is often mid-way when that happens).  The App restarts it and,
            # REST_FOR_ONE, this Coordinator with it: stop quietly ("shutdown": a
            # transient child is not restarted for that alone) instead of crashing.
            self.stop("shutdown")
            return


class App(Supervisor):
    # REST_FOR_ONE: each child depends on the ones started before it.  A new
    # Aggregator has empty totals: the Coordinator must start over to feed it.  A new
    # TaskSupervisor means the stream's running tasks died with the old one (their
    # exits would be misread as bad files): the Coordinator must start a fresh stream.
    # A crash of the Coordinator alone disturbs neither the totals nor the tasks'
    # supervisor: it is restarted by itself and resumes where the Aggregator says it
    # stopped.  (ONE_FOR_ONE would leave a restarted Aggregator waiting for files that
    # nobody sends again.)
    strategy = RestartStrategy.REST_FOR_ONE

    def child_specs(self, paths: list[str], workers: int) -> list[ChildSpec]:
        return [
            # name=: each (re)started instance is registered under that name
            ChildSpec(id="aggregator", actor_class=Aggregator, args=(len(paths),), name=AGGREGATOR),
            ChildSpec(id="tasks", actor_class=TaskSupervisor, name=TASKS),
            ChildSpec(
                id="coordinator",
                actor_class=Coordinator,
                args=(paths, workers),
                restart=RestartType.TRANSIENT,
            ),
        ]


# ----------------------------------------------------------------- main program


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
                TextColumn("{task.fields[crashes]} crashed tasks"),
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
    """Analyse ``path`` with at most ``workers`` tasks at once; return the final totals."""
    paths = find_sources(path, limit)
    reporter = Reporter(len(paths), progress)
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            app = await App.start(paths, workers, task_group=tg)
            snap = await wait_until_done(app, reporter)
            tg.cancel_scope.cancel()  # stops the whole tree, newest child first
    finally:
        reporter.close()
    snap.seconds = time.perf_counter() - started
    snap.failures.sort()
    snap.backend = _backend()
    snap.workers = workers
    return snap


class AppStopped(Exception):
    """The root supervisor gave up: its children kept crashing faster than allowed."""


async def wait_until_done(app: PID, reporter: Reporter) -> Summary:
    """Take a snapshot of the Aggregator ten times a second (to draw progress) until
    every file is accounted for; the Aggregator wakes us early when the last one is."""
    while True:
        wake = anyio.Event()
        try:
            snap: Summary = await call(AGGREGATOR, ("snapshot", wake))
        except CallError:  # a child of App is being restarted, or App itself gave up
            if not is_alive(app):
                raise AppStopped("the application stopped: too many crashes, see the log") from None
        else:
            reporter.update(snap)
            if snap.done == snap.total:
                return snap
        with anyio.move_on_after(0.1):
            await wake.wait()


def _backend() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


def shown_path(failed: str, path: str) -> str:
    """How the failures table names a failed file: relative to the directory that was
    analysed, or as given when ``path`` is that one file."""
    if os.path.isdir(path):
        return os.path.relpath(failed, path)
    return failed


def print_summary(s: Summary, path: str, shown: int = 10) -> None:
    crashes = f"{s.crashes:,} ({s.expected_crashes:,} expected, not logged)"
    rows = [
        ("files parsed", f"{s.ok:,}"),
        ("files failed", f"{s.failed:,}"),
        ("lines", f"{s.lines:,}"),
        ("functions", f"{s.functions:,}"),
        ("async functions", f"{s.async_functions:,}"),
        ("classes", f"{s.classes:,}"),
        ("imports", f"{s.imports:,}"),
        ("tasks", f"one per file, at most {s.workers} at once"),
        ("crashed tasks", crashes),
        ("timed-out tasks", f"{s.timeouts:,} (killed after {TASK_TIMEOUT:.0f} s)"),
        ("coordinator restarts", f"{max(0, s.coordinator_starts - 1):,}"),
        ("wall time", f"{s.seconds:.2f} s"),
        ("files per second", f"{s.files_per_second:,.0f}"),
        ("backend", s.backend),
    ]
    failures = [(shown_path(p, path), error) for p, error in s.failures[:shown]]
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
        failed = Table("failed file", "error", title="files whose task crashed")
        for row in failures:
            failed.add_row(*row)
        console.print(failed)


# ------------------------------------------------- distributed mode (demo_nodes.py)


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """``--nodes N`` and ``--kill-node-after SECONDS`` (``2`` or ``2s``)."""
    parser.add_argument(
        "--nodes", type=int, default=0, help="worker nodes (OS processes) over NATS; 0: none"
    )
    parser.add_argument(
        "--kill-node-after",
        type=lambda text: float(text.removesuffix("s")),
        default=None,
        metavar="SECONDS",
        help="SIGKILL the last worker node this long after the start (e.g. 2s)",
    )


def main_nodes(args: argparse.Namespace) -> int:
    """The same parse over ``args.nodes`` worker nodes: see ``examples/demo_nodes.py``."""
    import demo_nodes

    paths = find_sources(args.path, args.limit)
    totals, seconds = anyio.run(
        demo_nodes.run_nodes,
        paths,
        args.nodes,
        args.kill_node_after,
        args.backend,
        backend=args.backend,
    )
    demo_nodes.print_nodes_summary(totals, seconds, args.path, args.nodes)
    return 0 if totals.done == totals.total else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = sysconfig.get_paths()["stdlib"]
    parser.add_argument("path", nargs="?", default=default, help=f"default: {default}")
    parser.add_argument("--workers", type=int, default=4, help="most files parsed at once")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files")
    parser.add_argument("--no-progress", action="store_true", help="plain progress lines")
    parser.add_argument("--observer", action="store_true", help="serve the web observer")
    parser.add_argument("--port", type=int, default=8090, help="the observer's port")
    add_node_arguments(parser)  # --nodes, --kill-node-after: see examples/demo_nodes.py
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not os.path.exists(args.path):
        parser.error(f"{args.path}: no such file or directory")
    if not find_sources(args.path, None):
        print(
            f"{args.path}: no Python files to parse (the demo looks for *.py files, skipping "
            f"{', '.join(sorted(SKIP_DIRS))}); give it a directory with some, or one file",
            file=sys.stderr,
        )
        return 0
    if args.observer:
        return run_with_observer(args.path, args.workers, args.limit, args.port, args.backend)
    fancy = not args.no_progress and Console is not None and sys.stdout.isatty()
    handlers = [RichHandler(show_path=False)] if fancy else None  # logs above the bar
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", handlers=handlers)
    if args.nodes:
        return main_nodes(args)
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


# ------------------------------------------------------------- with the observer


def run_with_observer(path: str, workers: int, limit: int | None, port: int, backend: str) -> int:
    """Run the application as the program (``anyotp.run``) with the web observer,
    until Ctrl-C: the analysis runs once, then the tree stays up to be looked at."""
    import anyotp
    from anyotp.observer import Observer

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    paths = find_sources(path, limit)
    print(f"observer on http://127.0.0.1:{port}/ ({len(paths)} files; Ctrl-C to stop)", flush=True)
    spec = Observer.child_spec(port=port)
    return anyotp.run(App, paths, workers, backend=backend, observer=spec)


if __name__ == "__main__":
    sys.exit(main())
