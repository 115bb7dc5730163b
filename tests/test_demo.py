"""The demo application (examples/demo.py) on a small tree with known contents."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import pytest

import anyotp

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


@pytest.mark.anyio
async def test_demo_counts_a_known_tree_and_survives_its_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _make_tree(tmp_path)
    summary = await demo.run_demo(str(tmp_path), workers=2, limit=None, progress=False)

    assert summary.total == 8
    assert (summary.ok, summary.failed) == (5, 3)
    assert summary.crashes == summary.hidden_logs == 3
    assert summary.restarts == 3  # one restart per crash, and every file accounted for
    assert summary.failures == sorted((str(tmp_path / n), err) for n, (_, err) in BAD.items())
    columns = list(zip(*(counts for _, *counts in GOOD.values()), strict=True))
    assert summary.lines == sum(columns[0]) == 20
    assert summary.functions == sum(columns[1]) == 3
    assert summary.async_functions == sum(columns[2]) == 1
    assert summary.classes == sum(columns[3]) == 2
    assert summary.imports == sum(columns[4]) == 4
    assert summary.backend in ("asyncio", "trio")
    # The expected crashes were not logged as errors; the tree is gone.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert anyotp.processes() == []
    assert not [n for n in anyotp.registered() if n.startswith("demo.")]


@pytest.mark.anyio
async def test_demo_logs_unexpected_crashes_in_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("def (:\n")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing")  # open() fails
    summary = await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)

    assert (summary.ok, summary.failed, summary.crashes) == (1, 2, 2)
    assert summary.hidden_logs == 1  # only the SyntaxError was hidden
    assert [err for _, err in summary.failures] == ["SyntaxError", "FileNotFoundError"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the FileNotFoundError, with its traceback; not the SyntaxError
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], FileNotFoundError)


@pytest.mark.anyio
async def test_demo_reports_when_the_root_supervisor_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No restart allowed anywhere: the first bad file stops the pool, then the App.
    monkeypatch.setattr(demo.WorkerPool, "max_restarts", 0)
    monkeypatch.setattr(demo.App, "max_restarts", 0)
    (tmp_path / "bad.py").write_text("def (:\n")
    with pytest.RaisesGroup(demo.AppStopped):
        await demo.run_demo(str(tmp_path), workers=1, limit=None, progress=False)
    assert anyotp.processes() == []


@pytest.mark.anyio
async def test_demo_limit_takes_the_first_files(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    summary = await demo.run_demo(str(tmp_path), workers=3, limit=3, progress=False)
    assert summary.total == summary.done == 3


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
    assert "undecodable.py" in out
    assert backend in out
