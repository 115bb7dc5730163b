"""anyotp.run: a supervision tree as the whole program."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

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
