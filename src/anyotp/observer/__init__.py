"""The observer: the live system in a browser, and Prometheus metrics.

Like Erlang's ``observer`` or Phoenix LiveDashboard, started inside the running
application: ``anyotp.run(App, observer=8090)``, or ``Observer.child_spec()`` in any
supervision tree.  It serves live pages (system, supervision tree, processes,
process detail with a kill button, crash log) and ``/metrics`` for Prometheus, on
127.0.0.1 by default, with Starlette and Hypercorn on whichever backend runs (asyncio
or trio).  Needs the ``observer`` extra: ``pip install 'anyotp[observer]'``.

See ``docs/observer.md``.
"""

from __future__ import annotations

try:
    import hypercorn  # noqa: F401
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
except ImportError as _missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"anyotp.observer needs the 'observer' extra ({_missing.name} is missing): "
        "pip install 'anyotp[observer]'"
    ) from _missing

from ._server import Observer as Observer

__all__ = ["Observer"]
