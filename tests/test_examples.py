"""Every program in examples/ runs to completion and exits with status 0.

Each one runs in a fresh interpreter (``python examples/x.py``, cwd = repo root), as a
reader would run it.  examples/demo.py is left out: it parses the whole standard
library by default, and tests/test_demo.py tests it on a small tree instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name != "demo.py")
TIMEOUT = 30.0


def test_examples_are_found() -> None:
    assert EXAMPLES, "no examples/*.py found besides demo.py"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_and_exits_zero(path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{path.name} did not finish within {TIMEOUT} s:\n{e.stdout}")
    assert done.returncode == 0, (
        f"{path.name} exited with status {done.returncode}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )
