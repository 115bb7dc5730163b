"""Every ```python block of README.md and docs/*.md runs as a complete program.

Each block runs in a fresh interpreter (``python -c <block>``, cwd = repo root) and
must exit with status 0 and print something; blocks that call ``anyio.run`` run a
second time with trio as the default backend, since the docs promise both.  A block
whose fence is preceded by the line ``<!-- not-run -->`` is skipped (keep that for
shell or sketch blocks).  The test id is the block's file and fence line, e.g.
``docs/genserver.md:42-asyncio``.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_RUN = "<!-- not-run -->"
TIMEOUT = 30.0

# Blocks that use anyotp.sync are skipped while that package cannot be imported (it is
# being written); once it imports, its blocks run like any other.
try:
    import anyotp.sync  # noqa: F401
except Exception as e:  # not only ImportError: a half-written module raises anything
    SYNC_MISSING: str | None = f"anyotp.sync not available yet ({type(e).__name__}: {e})"
else:
    SYNC_MISSING = None
USES_SYNC = re.compile(r"\banyotp\.sync\b")

HAVE_TRIO = importlib.util.find_spec("trio") is not None
# Makes a plain `anyio.run(main)` use trio; an explicit backend= still wins.
TRIO_PRELUDE = "import anyio, functools; anyio.run = functools.partial(anyio.run, backend='trio')\n"


class Block(NamedTuple):
    where: str  # "docs/x.md:42", the line of the opening fence
    code: str
    skip: str | None  # why it is skipped, or None


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [f for f in files if f.is_file()]


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of one markdown file, with their fence line numbers."""
    return parse_blocks(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())


def parse_blocks(text: str, rel: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```python":
            i += 1
            continue
        start = i
        previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{rel}:{start + 1}: ```python block is never closed")
        i += 1
        code = "\n".join(body) + "\n"
        skip = None
        if previous == NOT_RUN:
            skip = "marked <!-- not-run -->"
        elif SYNC_MISSING is not None and USES_SYNC.search(code):
            skip = SYNC_MISSING
        blocks.append(Block(f"{rel}:{start + 1}", code, skip))
    return blocks


def cases() -> list[object]:
    params: list[object] = []
    for path in doc_files():
        for block in python_blocks(path):
            backends = ["asyncio"]
            if "anyio.run(" in block.code:
                backends.append("trio")
            for backend in backends:
                marks = []
                if block.skip is not None:
                    marks.append(pytest.mark.skip(reason=block.skip))
                elif backend == "trio" and not HAVE_TRIO:
                    marks.append(pytest.mark.skip(reason="trio is not installed"))
                params.append(
                    pytest.param(block, backend, marks=marks, id=f"{block.where}-{backend}")
                )
    return params


@pytest.mark.parametrize(("block", "backend"), cases())
def test_doc_block_runs(block: Block, backend: str) -> None:
    code = block.code if backend == "asyncio" else TRIO_PRELUDE + block.code
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.where} ({backend}) did not finish within {TIMEOUT} s:\n{e.stdout}")
    assert done.returncode == 0, (
        f"{block.where} ({backend}) exited with status {done.returncode}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )
    assert done.stdout.strip(), f"{block.where} ({backend}) printed nothing; examples should"


def test_blocks_are_found() -> None:
    # Guards the collector itself: the README's quick start is a ```python block.
    assert any(b.where.startswith("README.md:") for b in python_blocks(ROOT / "README.md"))


def test_blocks_carry_their_fence_line_and_the_not_run_marker() -> None:
    text = "# t\n\n```python\nprint(1)\n```\n\n<!-- not-run -->\n```python\nx\n```\n"
    first, second = parse_blocks(text, "docs/t.md")
    assert first == Block("docs/t.md:3", "print(1)\n", None)
    assert second.where == "docs/t.md:8"
    assert second.skip == "marked <!-- not-run -->"


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"docs/t.md:1: ```python block is never closed"):
        parse_blocks("```python\nprint(1)\n", "docs/t.md")
