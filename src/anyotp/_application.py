"""Applications: run a supervision tree as the whole program.

``anyotp.run(App)`` starts the root supervisor (or any process class, or a
``ChildSpec``), waits until it exits, and stops it in order -- children in reverse
start order, each with its shutdown timeout -- on SIGINT or SIGTERM (a second signal
kills it at once).  It returns an exit status for ``sys.exit``: 0 when the root exits
``"normal"`` or was stopped by a signal, 1 when it exits for any other reason (a
crash, or ``"shutdown"`` after its restart intensity was exceeded) or fails to start.
Like starting an OTP application whose exit stops the node::

    if __name__ == "__main__":
        sys.exit(anyotp.run(App))
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ._child_spec import ChildSpec
from ._core import is_process_class, log, spawn, wait_dead
from ._exceptions import StartError

__all__ = ["run"]

_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(
    root: type[Any] | ChildSpec,
    *args: Any,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
    signals: tuple[signal.Signals, ...] = _DEFAULT_SIGNALS,
    node: contextlib.AbstractAsyncContextManager[Any] | None = None,
    **kwargs: Any,
) -> int:
    """Run ``root`` as the program: start it, wait for it, stop it on a signal.

    Args:
        root: a process class (usually a ``Supervisor`` subclass) started with
            ``*args``/``**kwargs``, or a ``ChildSpec`` (its args and kwargs are used).
        backend: ``"asyncio"`` or ``"trio"`` (as ``anyio.run``).
        backend_options: passed to ``anyio.run`` (e.g. ``{"use_uvloop": True}``).
        signals: signals that trigger an orderly shutdown (main thread only).
        node: run as a node of a cluster: ``anyotp.node.start("worker1", url=...)``
            (not entered yet; ``run`` enters it before the root starts and leaves the
            cluster after the root stopped, on a signal too).

    Returns:
        0 if the root exited ``"normal"`` or was stopped by a signal; 1 otherwise.
    """
    if isinstance(root, ChildSpec):
        if args or kwargs:
            raise TypeError("run(ChildSpec) takes no extra arguments: put them in the spec")
        cls, args, kwargs = root.actor_class, root.args, dict(root.kwargs)
    else:
        cls = root
    if not (isinstance(cls, type) and is_process_class(cls)):
        raise TypeError(f"run() takes a process class or a ChildSpec, got {root!r}")
    status: int = anyio.run(
        _main, cls, args, kwargs, signals, node, backend=backend, backend_options=backend_options
    )
    return status


async def _main(
    cls: type[Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    signals: tuple[signal.Signals, ...],
    node: contextlib.AbstractAsyncContextManager[Any] | None = None,
) -> int:
    if node is not None:
        async with node:
            return await _main(cls, args, kwargs, signals)
    stopped_by_signal = False
    use_signals = bool(signals) and threading.current_thread() is threading.main_thread()
    # The signal handlers are installed before the root starts: once any process of
    # the tree runs, a SIGTERM already means an orderly shutdown.
    receiver = anyio.open_signal_receiver(*signals) if use_signals else contextlib.nullcontext()
    with receiver as received:
        async with anyio.create_task_group() as tg:
            body = cls()
            try:
                await spawn(body, args, kwargs, tg)
            except StartError as e:
                log.error("application %s failed to start: %s", cls.__name__, e, exc_info=e)
                return 1
            proc = body._otp_pcb

            async def on_signal(received: AsyncIterator[signal.Signals]) -> None:
                nonlocal stopped_by_signal
                async for signum in received:
                    name = signal.Signals(signum).name
                    if not stopped_by_signal:
                        log.info("%s received; stopping %s", name, cls.__name__)
                        stopped_by_signal = True
                        proc.force_exit("shutdown")
                    else:  # a second signal: do not wait for an orderly shutdown
                        log.warning("%s received again; killing %s", name, cls.__name__)
                        proc.signal_exit(None, "kill")

            if received is not None:
                tg.start_soon(on_signal, received)
            reason = await wait_dead(proc)
            tg.cancel_scope.cancel()
    if stopped_by_signal or (type(reason) is str and reason == "normal"):
        return 0
    log.error("application %s exited with reason %r", cls.__name__, reason)
    return 1
