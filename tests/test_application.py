"""anyotp.run: a supervision tree as the whole program."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

APP = textwrap.dedent(
    """
    import sys
    import anyio
    from anyotp import ChildSpec, GenServer, Supervisor, run, send_after

    class Worker(GenServer):
        async def init(self, behaviour):
            if behaviour == "crash":
                send_after(self.pid, "crash", 0)
            print("started", flush=True)
            return behaviour

        async def handle_info(self, msg, state):
            raise RuntimeError("crash")

        async def terminate(self, reason, state):
            print("terminate", reason, flush=True)

    class App(Supervisor):
        max_restarts = 1

        def child_specs(self):
            return [ChildSpec(id="w", actor_class=Worker, args=(sys.argv[1],))]

    sys.exit(run(App, backend=sys.argv[2]))
    """
)


def start(behaviour: str, backend: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", APP, behaviour, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_stops_the_tree_in_order_and_exits_zero(backend: str) -> None:
    proc = start("idle", backend)
    assert proc.stdout is not None
    # run() installs its signal handlers before starting the tree, so once a child's
    # init has printed, SIGTERM means an orderly shutdown.
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "terminate shutdown" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_root_that_exceeds_its_restart_intensity_exits_nonzero(backend: str) -> None:
    proc = start("crash", backend)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert out.count("started") == 2  # first start + one restart, then intensity exceeded
    assert "restart intensity" in err


# ---------------------------------------------------------------- repeated signals

STUBBORN_APP = textwrap.dedent(
    """
    import sys
    import anyio
    from anyotp import ChildSpec, GenServer, Supervisor, run

    SHUTDOWN = None if sys.argv[1] == "None" else float(sys.argv[1])
    STUCK = float(sys.argv[2])  # seconds terminate takes: "never returns" when huge

    class Stubborn(GenServer):
        async def init(self, name):
            print("started", name, flush=True)
            return name

        async def terminate(self, reason, name):
            print("terminating", name, flush=True)
            await anyio.sleep(STUCK)
            print("terminated", name, flush=True)

    class Inner(Supervisor):
        def child_specs(self):
            spec = ChildSpec(id="deep", actor_class=Stubborn, args=("deep",), shutdown=SHUTDOWN)
            return [spec]

    class App(Supervisor):
        def child_specs(self):
            return [
                ChildSpec(id="inner", actor_class=Inner),
                ChildSpec(id="top", actor_class=Stubborn, args=("top",), shutdown=SHUTDOWN),
            ]

    sys.exit(run(App, backend=sys.argv[3]))
    """
)

NEVER = "3600"  # a terminate that never returns, as far as these tests can tell

# A root whose init never returns (argv as STUBBORN_APP's, the first two unused).
HANGING_INIT_APP = textwrap.dedent(
    """
    import sys
    import anyio
    from anyotp import GenServer, run

    class Root(GenServer):
        async def init(self):
            print("init", flush=True)
            await anyio.sleep_forever()

    sys.exit(run(Root, backend=sys.argv[3]))
    """
)


class Program:
    """``STUBBORN_APP`` in a subprocess; its output lines (stdout and stderr) are
    collected by a thread so the test can wait for one with a deadline."""

    def __init__(self, shutdown: str, stuck: str, backend: str, script: str = STUBBORN_APP) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, shutdown, stuck, backend],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for_line(self, line: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.lines:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                pytest.fail(f"no {line!r} line within {timeout} s; got {self.lines!r}")
            time.sleep(0.01)

    def interrupt(self) -> None:
        os.kill(self.proc.pid, signal.SIGINT)

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        """The exit status and how long it took; kills it and fails after ``timeout``."""
        start = time.monotonic()
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"run() did not return within {timeout} s; output {self.lines!r}")
        took = time.monotonic() - start
        self.close()
        return status, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        self.reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def ready(self) -> None:
        self.wait_for_line("started deep")
        self.wait_for_line("started top")


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestSignals:
    def test_one_sigint_kills_a_child_stuck_in_terminate_after_its_shutdown_time(
        self, backend: str
    ) -> None:
        app = Program("1.0", NEVER, backend)
        app.ready()
        app.interrupt()
        status, _ = app.wait_exit(timeout=15)
        assert status == 0
        assert "terminated top" not in app.lines

    def test_a_second_sigint_during_the_shutdown_returns_at_once_instead_of_hanging(
        self, backend: str
    ) -> None:
        app = Program("1.0", NEVER, backend)
        app.ready()
        app.interrupt()
        app.wait_for_line("terminating top")  # the root waits out top's 1.0 s
        app.interrupt()
        status, _ = app.wait_exit(timeout=15)
        assert status == 0

    def test_a_second_sigint_does_not_wait_for_a_slow_terminate(self, backend: str) -> None:
        # shutdown=None: the root would wait for top's terminate forever.
        app = Program("None", NEVER, backend)
        app.ready()
        app.interrupt()
        app.wait_for_line("terminating top")
        app.interrupt()
        status, _ = app.wait_exit(timeout=15)
        assert status == 0
        assert "terminated top" not in app.lines

    def test_a_second_sigint_kills_processes_deep_in_the_tree_too(self, backend: str) -> None:
        app = Program("None", "30", backend)
        app.ready()
        app.interrupt()
        app.wait_for_line("terminating top")
        app.interrupt()  # "inner" and its "deep" child have not been stopped yet
        status, _ = app.wait_exit(timeout=15)
        assert status == 0
        assert not any(line.startswith("terminated") for line in app.lines)

    def test_three_quick_sigints_still_end_the_program(self, backend: str) -> None:
        # Signals sent this fast may reach Python as one (the OS coalesces them), so
        # top has a shutdown time: however many arrive, run() must return.
        app = Program("1.0", NEVER, backend)
        app.ready()
        for _ in range(3):
            app.interrupt()
        status, _ = app.wait_exit(timeout=15)
        assert status == 0

    def test_a_sigint_while_the_root_is_still_in_init_stops_it(self, backend: str) -> None:
        app = Program("None", NEVER, backend, script=HANGING_INIT_APP)
        app.wait_for_line("init")
        app.interrupt()
        status, _ = app.wait_exit(timeout=15)
        assert status == 0
