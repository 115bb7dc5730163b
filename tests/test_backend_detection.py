"""Detecting the running event loop while another thread imports trio.

While a thread runs ``import trio``, ``sys.modules["trio"]`` holds a half-initialised
module: no ``lowlevel`` yet, or a ``lowlevel`` without its functions.  The thread
that imports cannot be running trio, and neither can any other, so the detection
(the core's ``current_loop`` and the sync API's event-loop check) must read such a
module as "no trio".  A fake half-initialised module in ``sys.modules`` makes the
window deterministic.
"""

from __future__ import annotations

import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import trio

import anyotp.sync
from anyotp._core._backend import current_loop
from anyotp.sync._client import event_loop_running


class Echo(anyotp.sync.GenServer[int]):
    def init(self) -> int:
        return 0

    def handle_call(self, message: dict[str, Any], state: int) -> tuple[Any, int]:
        return message, state + 1


def half_initialised_trio(with_lowlevel: bool) -> types.ModuleType:
    """A stand-in for ``trio`` while its ``__init__`` still runs in another thread."""
    fake = types.ModuleType("trio")
    if with_lowlevel:
        fake.lowlevel = types.ModuleType("trio.lowlevel")  # type: ignore[attr-defined]
    return fake


@pytest.fixture(params=[False, True], ids=["no-lowlevel-yet", "empty-lowlevel"])
def importing_trio(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trio", half_initialised_trio(request.param))


@pytest.mark.usefixtures("importing_trio")
class TestHalfImportedTrio:
    def test_current_loop_reads_a_half_initialised_trio_as_no_event_loop(self) -> None:
        assert current_loop() is None

    def test_the_sync_api_sees_no_event_loop_on_a_plain_thread(self) -> None:
        assert event_loop_running() is False

    def test_sync_calls_from_many_threads_all_succeed_while_trio_is_half_imported(
        self,
    ) -> None:
        with Echo() as server, ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda i: server.call({"n": i}, timeout=5.0), range(200)))
            assert replies == [{"n": i} for i in range(200)]
            assert anyotp.sync.call(server.pid, {"n": -1}, timeout=5.0) == {"n": -1}

    def test_sync_calls_succeed_while_another_thread_finishes_importing_trio(self) -> None:
        # Another thread flips sys.modules["trio"] between the half-initialised module
        # and the finished one while this thread calls, over and over.
        half = sys.modules["trio"]
        stop = threading.Event()

        def importer() -> None:
            while not stop.is_set():
                sys.modules["trio"] = half
                sys.modules["trio"] = trio

        with Echo() as server:
            thread = threading.Thread(target=importer)
            thread.start()
            try:
                replies = [server.call({"n": i}, timeout=5.0) for i in range(300)]
            finally:
                stop.set()
                thread.join()
        assert replies == [{"n": i} for i in range(300)]
