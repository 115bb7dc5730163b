"""Applications: run a supervision tree as the whole program.

``anyotp.run(App)`` starts the root supervisor (or any process class, or a
``ChildSpec``), waits until it exits, and stops it in order -- children in reverse
start order, each with its shutdown timeout -- on SIGINT or SIGTERM.  A second signal
kills every process of the program at once, without waiting for any ``terminate``.
It returns an exit status for ``sys.exit``: 0 when the root exits
``"normal"`` or was stopped by a signal, 1 when it exits for any other reason (a
crash, or ``"shutdown"`` after its restart intensity was exceeded) or fails to start.
Like starting an OTP application whose exit stops the node::

    if __name__ == "__main__":
        sys.exit(anyotp.run(App))
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ._child_spec import ChildSpec
from ._core import Proc, current_loop, is_process_class, spawn, table, wait_dead
from ._exceptions import StartError

log = logging.getLogger("anyotp.application")

__all__ = ["run"]

_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(
    root: type[Any] | ChildSpec,
    *args: Any,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
    signals: tuple[signal.Signals, ...] = _DEFAULT_SIGNALS,
    observer: int | ChildSpec | None = None,
    node: contextlib.AbstractAsyncContextManager[Any] | None = None,
    **kwargs: Any,
) -> int:
    """Run ``root`` as the program: start it, wait for it, stop it on a signal.

    Args:
        root: a process class (usually a ``Supervisor`` subclass) started with
            ``*args``/``**kwargs``, or a ``ChildSpec`` (its args and kwargs are used).
        backend: ``"asyncio"`` or ``"trio"`` (as ``anyio.run``).
        backend_options: passed to ``anyio.run`` (e.g. ``{"use_uvloop": True}``).
        signals: signals that trigger an orderly shutdown (main thread only); a
            second one kills every process of the program at once, without waiting
            for any ``terminate`` (children's shutdown times included).
        observer: a port (e.g. ``8090``) or ``Observer.child_spec(...)``: also start
            the web observer (``anyotp.observer``, the ``observer`` extra) once the
            root runs, on 127.0.0.1 unless the spec says otherwise.  If it cannot
            start (the port is taken), the error is logged, the root is stopped
            and ``run`` returns 1.
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
    if current_loop() is not None:
        raise RuntimeError(
            f"anyotp.run({cls.__name__}) starts its own event loop, and this thread already "
            f"runs one: from async code, start the root in a task group instead "
            f"(`await {cls.__name__}.start(task_group=tg)`), or call run() from a plain "
            "thread"
        )
    status: int = anyio.run(
        _main,
        cls,
        args,
        kwargs,
        signals,
        observer,
        node,
        backend=backend,
        backend_options=backend_options,
    )
    return status


async def _main(
    cls: type[Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    signals: tuple[signal.Signals, ...],
    observer: int | ChildSpec | None = None,
    node: contextlib.AbstractAsyncContextManager[Any] | None = None,
) -> int:
    if node is not None:
        async with node:
            return await _main(cls, args, kwargs, signals, observer)
    stopped_by_signal = False
    use_signals = bool(signals) and threading.current_thread() is threading.main_thread()
    body = cls()

    async def on_signal(received: AsyncIterator[signal.Signals]) -> None:
        nonlocal stopped_by_signal
        async for signum in received:
            name = signal.Signals(signum).name
            proc: Proc | None = getattr(body, "_otp_pcb", None)
            if proc is None:  # not spawned yet: nothing runs that could be stopped
                stopped_by_signal = True
            elif not stopped_by_signal:
                log.info("%s received; stopping %s", name, cls.__name__)
                stopped_by_signal = True
                proc.force_exit("shutdown")
            else:  # a second signal: do not wait for an orderly shutdown
                log.warning(
                    "%s received again; killing %s and all its processes", name, cls.__name__
                )
                _kill_all(proc)

    # The signal handlers are installed, and listened to, before the root starts: once
    # any process of the tree runs (even a root whose init never returns), a SIGTERM
    # already means an orderly shutdown.
    receiver = anyio.open_signal_receiver(*signals) if use_signals else contextlib.nullcontext()
    with receiver as received:
        async with anyio.create_task_group() as tg:
            if received is not None:
                tg.start_soon(on_signal, received)
            try:
                await spawn(body, args, kwargs, tg)
            except StartError as e:
                tg.cancel_scope.cancel()
                if stopped_by_signal:  # a signal stopped it while init ran
                    return 0
                log.error("application %s failed to start: %s", cls.__name__, e, exc_info=e)
                return 1
            proc = body._otp_pcb
            if observer is not None and not await _start_observer(observer, tg):
                proc.force_exit("shutdown")  # stopped in order, as on a signal
                await wait_dead(proc)
                tg.cancel_scope.cancel()
                return 1
            reason = await wait_dead(proc)
            tg.cancel_scope.cancel()
    if stopped_by_signal or (type(reason) is str and reason == "normal"):
        return 0
    log.error("application %s exited with reason %r", cls.__name__, reason)
    return 1


async def _start_observer(observer: int | ChildSpec, tg: Any) -> bool:
    """Start the web observer next to the root; False (logged) if it cannot start."""
    from .observer import Observer  # the optional extra: imported only when asked for

    spec = observer if isinstance(observer, ChildSpec) else Observer.child_spec(port=observer)
    try:
        pid = await spec.actor_class.start(*spec.args, task_group=tg, **spec.kwargs)
    except StartError as e:
        log.error("the observer failed to start, stopping the application: %s", e, exc_info=e)
        return False
    host, port = await Observer.address(pid)
    log.info("observer on http://%s:%d/", host, port)
    return True


def _kill_all(root: Proc) -> None:
    """Kill ``root`` and every process of the program at once, like ``exit(Pid, kill)``
    to each: the processes on ``root``'s event loop and those it owns at any depth
    (sync servers run on threads of their own).

    Killing only the root would not do: a child the root is stopping at that moment
    (waiting out its shutdown time) is no longer in the root's list of children and
    would be left running its ``terminate``, and ``run`` would wait for it -- forever,
    if that ``terminate`` never returns.  A killed process that is already stopping
    has its ``terminate`` (and its wait for its own children) cancelled.
    """
    loop = root.loop
    doomed: list[Proc] = []
    for p in list(table.values()):
        owner: Proc | None = p
        while owner is not None and owner is not root:
            owner = owner.owner
        if owner is root or p.loop is loop:
            doomed.append(p)
    for p in doomed:
        p.signal_exit(None, "kill")
