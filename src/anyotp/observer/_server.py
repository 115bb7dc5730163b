"""The :class:`Observer` process: serves the web UI and ``/metrics`` with Hypercorn
on the running backend (asyncio or trio)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import anyio
import sniffio
from hypercorn.config import Config

from .._child_spec import ChildSpec
from .._core import From, Target, call
from .._genserver import GenServer
from ._app import build_app
from ._collector import Collector

__all__ = ["Observer"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
#: Seconds the observer gives Hypercorn to close its connections when it stops.
SHUTDOWN_TIMEOUT = 3.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token.

    Raises:
        ValueError: ``host`` is not a loopback address and ``token`` is not set.
    """
    if token is not None and (not isinstance(token, str) or len(token) < 8):
        raise ValueError(
            "Observer(token=...) must be a string of at least 8 characters, e.g. "
            "secrets.token_urlsafe(16)"
        )
    if not _is_loopback(host) and token is None:
        raise ValueError(
            f"Observer(host={host!r}) would serve the observer beyond this machine without "
            "a token: pass token=secrets.token_urlsafe(16) (clients then add ?token=... or "
            "'Authorization: Bearer ...'), or bind to host='127.0.0.1'"
        )


async def _hypercorn_serve(app: Any, config: Config, trigger: Any) -> None:
    # shutdown_trigger is always given, so that Hypercorn installs no signal handlers
    # of its own: SIGINT and SIGTERM stay the application's.
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as trio_serve

        await trio_serve(app, config, shutdown_trigger=trigger)
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        await asyncio_serve(app, config, shutdown_trigger=trigger)


class Observer(GenServer[Any]):
    """The web observer as a process: put it in a supervision tree, or let
    ``anyotp.run(App, observer=8090)`` start it next to your application.

    It serves, on ``http://host:port/``, live pages of the system (processes, message
    and crash rates, loop lag, memory), the supervision trees, a sortable process
    table, each process's details (with a kill button), and the crash log; and
    Prometheus metrics on ``/metrics``.  It reads the process table through the
    public introspection API and never blocks the event loop.  Like Erlang's
    ``observer`` (and Phoenix LiveDashboard), started inside the running system.

    Start it with :meth:`child_spec` in a supervisor, or directly::

        pid = await Observer.start(port=0, task_group=tg)
        host, port = await Observer.address(pid)

    ``init(port=8090, host="127.0.0.1", token=None, allow_kill=True)``:

    Args:
        port: TCP port; 0 picks a free one (see :meth:`address`).
        host: address to bind.  Anything but a loopback address needs ``token``.
        token: a secret every request must carry (``?token=...`` or
            ``Authorization: Bearer ...``); at least 8 characters.
        allow_kill: False disables the kill endpoint (403) and hides the button.

    Raises:
        StartError: from ``start``, when ``init`` fails: a non-loopback ``host``
            without a token (a ``ValueError``), or the port is taken (``OSError``).
    """

    async def init(
        self,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        token: str | None = None,
        allow_kill: bool = True,
    ) -> None:
        """Bind the HTTP server (127.0.0.1 by default; elsewhere a token) and serve."""
        check_bind(host, token)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.host: str = host
        self.port: int = sock.getsockname()[1]
        self.stopping: anyio.Event = anyio.Event()
        self.collector: Collector = Collector()
        self.collector.attach()
        app = build_app(self.collector, token=token, allow_kill=allow_kill, stopping=self.stopping)
        config = Config()
        # Hypercorn takes the socket by its file descriptor (it closes it when done).
        config.bind = [f"fd://{sock.detach()}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = None
        self.children.start_soon(self._http_serve, app, config)
        self.children.start_soon(self.collector.sample_forever)

    async def _http_serve(self, app: Any, config: Config) -> None:
        # Hypercorn is stopped gracefully (its shutdown trigger), not cancelled: a
        # cancelled Hypercorn leaves tasks and errors behind on asyncio.  So it runs
        # in a shielded scope, and when this task is cancelled (the observer exits)
        # it sets the trigger and waits for Hypercorn to finish, a few seconds at most.
        shield = anyio.CancelScope(shield=True)
        done = anyio.Event()

        async def serve() -> None:
            try:
                with shield:
                    await _hypercorn_serve(app, config, self.stopping.wait)
            finally:
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            try:
                await done.wait()
            finally:
                self.stopping.set()
                with anyio.move_on_after(SHUTDOWN_TIMEOUT, shield=True):
                    await done.wait()
                shield.cancel()

    async def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        """Answers ``"address"`` with ``(host, port)``."""
        if request == "address":
            return (self.host, self.port), state
        return await super().handle_call(request, from_, state)

    async def terminate(self, reason: Any, state: Any) -> None:
        """Stops serving and detaches the observer's telemetry handlers."""
        stopping = getattr(self, "stopping", None)
        if stopping is not None:
            stopping.set()
        collector = getattr(self, "collector", None)
        if collector is not None:
            collector.detach()

    @staticmethod
    async def address(observer: Target, timeout: float | None = 5.0) -> tuple[str, int]:
        """The ``(host, port)`` an observer serves on (the real port when started
        with ``port=0``).

        Raises:
            CallNoProc, CallTimeout, CallExit: as :func:`anyotp.call`.
        """
        result: tuple[str, int] = await call(observer, "address", timeout=timeout)
        return result

    @classmethod
    def child_spec(
        cls,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        token: str | None = None,
        allow_kill: bool = True,
        *,
        id: str = "observer",
        name: Any = None,
    ) -> ChildSpec:
        """A :class:`~anyotp.ChildSpec` that starts an observer in a supervisor, like
        Elixir's ``child_spec/1``.  Arguments as :class:`Observer`'s ``init``.

        Raises:
            ValueError: a non-loopback ``host`` without ``token`` (checked here too,
                so the mistake shows before the tree starts).
        """
        check_bind(host, token)
        kwargs = {"port": port, "host": host, "token": token, "allow_kill": allow_kill}
        return ChildSpec(id=id, actor_class=cls, kwargs=kwargs, name=name)
