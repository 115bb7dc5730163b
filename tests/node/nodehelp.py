"""Helpers for multi-node tests: node OS processes driven by lines."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

import anyotp
import anyotp.node

PEER = Path(__file__).with_name("_peer.py")
COOKIE = "test-cookie"
#: Short heartbeat timeout for tests (seconds): hung nodes are found in ~2 s.
HEARTBEAT = 2.0


class PeerNode:
    """A node OS process running ``_peer.py``."""

    def __init__(
        self, url: str, name: str, backend: str, cookie: str = COOKIE, codec: str = "pickle"
    ) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), url, name, cookie, str(HEARTBEAT), backend, codec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")  # EOF

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect_sync(self, prefix: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"peer {self.name} printed no {prefix!r} line in {timeout} s; "
                    f"stderr: {''.join(self.stderr)[-2000:]}"
                ) from None
            if line == "" and self.proc.poll() is not None:
                raise AssertionError(
                    f"peer {self.name} exited ({self.proc.returncode}) before {prefix!r}: "
                    f"{''.join(self.stderr)[-2000:]}"
                )
            if line.startswith(prefix):
                return line

    async def expect(self, prefix: str, timeout: float = 10.0) -> str:
        return await anyio.to_thread.run_sync(self.expect_sync, prefix, timeout)

    async def ask(self, line: str, prefix: str, timeout: float = 10.0) -> str:
        self.command(line)
        return await self.expect(prefix, timeout)

    def signal(self, signum: signal.Signals) -> None:
        os.kill(self.proc.pid, signum)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Echo(anyotp.GenServer):
    """A process tests spawn on other nodes by its qualified name (``nodehelp:Echo``)."""

    async def init(self, tag: str) -> str:
        return tag

    async def handle_call(self, request: Any, from_: anyotp.From, state: str) -> Any:
        return ((state, request, anyotp.node.node()), state)


class Books(anyotp.GenServer):
    """Answers how many monitors other nodes hold on this node's processes (its own
    caller's excepted): ``nodehelp:Books``."""

    async def init(self) -> None:
        return None

    async def handle_call(self, request: Any, from_: anyotp.From, state: None) -> Any:
        from anyotp._core import get_transport

        books = get_transport()._books  # type: ignore[union-attr]
        held = sum(len(b.monitors_in) for b in books.values()) - 1  # this call's
        return (held, state)
