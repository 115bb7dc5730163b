"""The demo application (examples/demo.py) on a small tree with known contents."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

import anyotp

pytestmark = pytest.mark.anyio

DEMO_PATH = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anyotp_demo", DEMO_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


demo = _load_demo()

# path -> (source bytes, lines, functions, async functions, classes, imports)
GOOD: dict[str, tuple[bytes, int, int, int, int, int]] = {
    "a.py": (b"import os\nimport sys\n", 2, 0, 0, 0, 2),
    "b.py": (b"def f():\n    pass\n\n\nasync def g():\n    pass\n", 6, 1, 1, 0, 0),
    "c.py": (
        b"class A:\n    def m(self):\n        def inner():\n            pass\n\n\n"
        b"class B(A):\n    pass\n",
        8,
        2,
        0,
        2,
        0,
    ),
    "pkg/d.py": (b"from . import x\nfrom os.path import join, split\n", 2, 0, 0, 0, 2),
    # a PEP 263 cookie, and no newline at the end of the last line
    "pkg/e.py": (b"# -*- coding: latin-1 -*-\ns = '\xe9'", 2, 0, 0, 0, 0),
}
BAD: dict[str, tuple[bytes, str]] = {
    "bad_syntax.py": (b"def (:\n", "SyntaxError"),
    "pkg/bad_indent.py": (b"if True:\npass\n", "IndentationError"),
    "undecodable.py": (b"x = 1\ny = 2\nz = '\xff'\n", "UnicodeDecodeError"),
}


def _make_tree(root: Path) -> None:
    for name, (data, *_) in GOOD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name, (data, _) in BAD.items():
        (root / name).write_bytes(data)
    (root / "notes.txt").write_text("def (: not python, not analysed\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "skipped.py").write_text("def (: skipped directory\n")


def _assert_exact_totals(summary: Any, root: Path) -> None:
    assert summary.total == 8
    assert (summary.ok, summary.failed) == (5, 3)
    assert summary.crashes == 3  # one task per file: each bad file crashed its task
    assert summary.timeouts == 0
    assert summary.failures == sorted((str(root / n), err) for n, (_, err) in BAD.items())
    columns = list(zip(*(counts for _, *counts in GOOD.values()), strict=True))
    assert summary.lines == sum(columns[0]) == 20
    assert summary.functions == sum(columns[1]) == 3
    assert summary.async_functions == sum(columns[2]) == 1
    assert summary.classes == sum(columns[3]) == 2
    assert summary.imports == sum(columns[4]) == 4


def _tree_is_gone() -> None:
    assert anyotp.processes() == []
    assert not [n for n in anyotp.registered() if n.startswith("demo.")]


@pytest.mark.parametrize("workers", [1, 2, 16])
async def test_demo_counts_a_known_tree_and_survives_its_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    _make_tree(tmp_path)
    summary = await demo.run_demo(str(tmp_path), workers=workers, limit=None, progress=False)

    _assert_exact_totals(summary, tmp_path)
    assert summary.expected_crashes == 3
    assert summary.coordinator_starts == 1
    assert summary.workers == workers
    assert summary.backend in ("asyncio", "trio")
    # The expected crashes were not logged as errors; the tree is gone.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    _tree_is_gone()


async def test_demo_logs_unexpected_crashes_in_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("def (:\n")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing")  # open() fails
    summary = await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)

    assert (summary.ok, summary.failed, summary.crashes) == (1, 2, 2)
    assert summary.expected_crashes == 1  # only the SyntaxError was expected
    assert summary.failures == [
        (str(tmp_path / "bad.py"), "SyntaxError"),
        (str(tmp_path / "dangling.py"), "FileNotFoundError"),
    ]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the FileNotFoundError, with its traceback; not the SyntaxError
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], FileNotFoundError)
    _tree_is_gone()


async def test_a_crashed_coordinator_is_restarted_and_resumes_without_double_counting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Coordinator crashes once, while reporting c.py (its 4th file, after a.py,
    # b.py and bad_syntax.py).  The App restarts it; the new one asks the Aggregator
    # which files are accounted for and parses only the others: c.py again (its
    # result was lost in the crash), every other file once.  With one task at a time
    # no other file is in flight when it crashes, so the counts are exact.
    report, parse = demo.Coordinator.report, demo.parse_file
    crashed: list[str] = []
    parsed: list[str] = []

    async def report_or_crash(self: Any, path: str, status: str, value: Any) -> None:
        if path.endswith("c.py") and not crashed:
            crashed.append(path)
            raise RuntimeError("coordinator bug")
        await report(self, path, status, value)

    def counting_parse(path: str) -> Any:
        parsed.append(path)
        return parse(path)

    monkeypatch.setattr(demo.Coordinator, "report", report_or_crash)
    monkeypatch.setattr(demo, "parse_file", counting_parse)
    _make_tree(tmp_path)
    summary = await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)

    c_py = str(tmp_path / "c.py")
    assert crashed == [c_py]
    assert summary.coordinator_starts == 2
    _assert_exact_totals(summary, tmp_path)  # every file counted exactly once
    assert sorted(parsed) == sorted([*demo.find_sources(str(tmp_path), None), c_py])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [type(r.exc_info[1]) for r in errors if r.exc_info] == [RuntimeError]
    _tree_is_gone()


async def test_demo_reports_when_the_root_supervisor_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No restart allowed: the first Coordinator crash stops the App.
    async def crash(self: Any, path: str, status: str, value: Any) -> None:
        raise RuntimeError("coordinator bug")

    monkeypatch.setattr(demo.Coordinator, "report", crash)
    monkeypatch.setattr(demo.App, "max_restarts", 0)
    (tmp_path / "ok.py").write_text("x = 1\n")
    with pytest.RaisesGroup(demo.AppStopped):
        await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)
    _tree_is_gone()


async def test_cancelling_the_demo_mid_run_stops_the_whole_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(50):
        (tmp_path / f"m{i:02}.py").write_text("x = 1\n")
    report = demo.Coordinator.report
    reported: list[str] = []
    scope = anyio.CancelScope()

    async def report_then_cancel(self: Any, path: str, status: str, value: Any) -> None:
        reported.append(path)
        if len(reported) == 10:
            scope.cancel()  # as Ctrl-C does: the caller of run_demo is cancelled
        await report(self, path, status, value)

    monkeypatch.setattr(demo.Coordinator, "report", report_then_cancel)
    with scope:
        await demo.run_demo(str(tmp_path), workers=4, limit=None, progress=False)
    assert scope.cancelled_caught
    assert 10 <= len(reported) < 50
    _tree_is_gone()


async def test_demo_limit_takes_the_first_files(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    summary = await demo.run_demo(str(tmp_path), workers=3, limit=3, progress=False)
    assert summary.total == summary.done == 3
    _tree_is_gone()


async def test_an_empty_tree_finishes_at_once(tmp_path: Path) -> None:
    summary = await demo.run_demo(str(tmp_path), workers=2, limit=None, progress=False)
    assert (summary.total, summary.done, summary.crashes) == (0, 0, 0)
    _tree_is_gone()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_command_line(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_tree(tmp_path)
    status = demo.main([str(tmp_path), "--workers", "2", "--no-progress", "--backend", backend])
    assert status == 0
    out = capsys.readouterr().out
    assert "8/8 files, 3 crashes" in out
    assert "files parsed" in out
    assert "crashed tasks" in out
    assert "undecodable.py" in out
    assert backend in out


# ------------------------------------------------------------ off-loop parsing


async def test_a_file_that_takes_too_long_is_killed_and_counted_as_timed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsing runs in a thread, so the loop is free to enforce the task timeout while
    # slow.py's parse hangs (here: until the test lets it go).
    parse = demo.parse_file
    release = threading.Event()

    def hanging_parse(path: str) -> Any:
        if path.endswith("slow.py"):
            release.wait(timeout=10)
        return parse(path)

    monkeypatch.setattr(demo, "parse_file", hanging_parse)
    monkeypatch.setattr(demo, "TASK_TIMEOUT", 1.0)  # roomy: a.py and z.py take ms
    for name in ("a.py", "slow.py", "z.py"):
        (tmp_path / name).write_text("x = 1\n")
    try:
        summary = await demo.run_demo(str(tmp_path), workers=2, limit=None, progress=False)
    finally:
        release.set()
    assert (summary.ok, summary.failed, summary.timeouts, summary.crashes) == (2, 1, 1, 0)
    assert summary.failures == [(str(tmp_path / "slow.py"), "timeout")]
    _tree_is_gone()


async def test_progress_keeps_updating_while_a_file_is_being_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slow.py's parse waits until the progress display has been redrawn three times
    # meanwhile: that can only happen if the parse does not block the event loop.
    parse = demo.parse_file
    update = demo.Reporter.update
    redraws: list[int] = []
    redrawn = threading.Event()
    parsing = threading.Event()

    def update_and_count(self: Any, snap: Any) -> None:
        if parsing.is_set():
            redraws.append(snap.done)
            if len(redraws) >= 3:
                redrawn.set()
        update(self, snap)

    def slow_parse(path: str) -> Any:
        if path.endswith("slow.py"):
            parsing.set()
            assert redrawn.wait(timeout=10), "the progress display froze during a parse"
        return parse(path)

    monkeypatch.setattr(demo.Reporter, "update", update_and_count)
    monkeypatch.setattr(demo, "parse_file", slow_parse)
    (tmp_path / "slow.py").write_text("x = 1\n")
    summary = await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)
    assert (summary.ok, summary.failed) == (1, 0)
    assert len(redraws) >= 3
    _tree_is_gone()


# ------------------------------------------------------------ the command line


def test_a_single_file_argument_names_that_file_in_the_failures_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("broken.py").write_text("def (:\n")
    status = demo.main(["broken.py", "--no-progress", "--backend", "asyncio"])
    assert status == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "SyntaxError" in line]
    assert len(rows) == 1
    assert "broken.py" in rows[0]


def test_shown_path_is_relative_to_a_directory_and_as_given_for_a_file(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    one = tmp_path / "pkg" / "m.py"
    one.write_text("x = 1\n")
    assert demo.shown_path(str(one), str(tmp_path)) == os.path.join("pkg", "m.py")
    assert demo.shown_path(str(one), str(one)) == str(one)


def test_a_directory_without_python_files_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not python\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "cached.py").write_text("x = 1\n")
    status = demo.main([str(tmp_path), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0
    assert "no Python files to parse" in captured.err
    assert "files parsed" not in captured.out


# ------------------------------------------------------------ make demo


def test_make_demo_installs_the_demo_extra_only() -> None:
    import tomllib

    root = DEMO_PATH.parent.parent
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    assert "demo: $(DEMO_STAMP)" in makefile
    recipe = makefile.split("$(DEMO_STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "pip install -e '.[demo]'" in recipe
    extras = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    demo_extra = " ".join(extras["project"]["optional-dependencies"]["demo"])
    for tool in ("mypy", "ruff", "pytest", "hypothesis"):
        assert tool not in demo_extra


def test_the_readme_first_screen_has_exactly_two_set_up_commands() -> None:
    # make demo and make test (a line may run one of them with arguments)
    readme = (DEMO_PATH.parent.parent / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].split()[:2] for line in first_block.splitlines()]
    targets = [" ".join(c) for c in commands if c]
    assert targets[:2] == ["make demo", "make test"]
    assert set(targets) == {"make demo", "make test"}
