"""What the observer measures: telemetry counters, the crash log, loop lag, and the
Prometheus metrics built from them.

Everything here reads the running system through public API only
(:func:`anyotp.processes`, :func:`anyotp.process_info`, telemetry events).
"""

from __future__ import annotations

import itertools
import os
import platform
import resource
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
import sniffio
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

from .. import telemetry
from .._core import PID, processes
from .._introspection import process_info

#: Rough bytes per queued message, for the memory estimate (a tuple, its envelope
#: and a small payload).
MESSAGE_BYTES = 170
#: Rough bytes of a process's runtime fields (PCB, mailbox, task), for the estimate.
PROCESS_BYTES = 2000
#: Crash reports kept in the crash log.
CRASH_LOG_SIZE = 200
_NORMAL = ("normal", "shutdown")
_ids = itertools.count(1)


def is_abnormal(reason: Any) -> bool:
    """False for ``"normal"``, ``"shutdown"`` and ``("shutdown", term)``."""
    if type(reason) is str:
        return reason not in _NORMAL
    return not (type(reason) is tuple and len(reason) == 2 and reason[0] == "shutdown")


def short_repr(value: Any, limit: int = 2000) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises."""
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not break the page
        text = f"<unrepresentable {type(value).__name__}: {e!r}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pid_key(pid: PID) -> str:
    """The PID as the observer's URLs spell it: ``"0.42"``."""
    return repr(pid)[5:-1]


#: The observer yields to the event loop after every ``CHUNK`` ``process_info`` calls,
#: so that reading a large process table never holds the loop for long.
CHUNK = 200
#: Seconds a summary of the process table is reused (by every page and scrape).
TABLE_MAX_AGE = 0.5


async def read_table() -> list[tuple[PID, dict[str, Any]]]:
    """``process_info`` of every live process, oldest first, with a checkpoint every
    :data:`CHUNK` processes."""
    rows = []
    for i, pid in enumerate(processes()):
        if i and i % CHUNK == 0:
            await anyio.lowlevel.checkpoint()
        info = process_info(pid)
        if info is not None:
            rows.append((pid, info))
    return rows


class TableStats(NamedTuple):
    """A summary of the process table."""

    node: str
    processes: int
    by_behaviour: dict[str, int]
    queued: int  #: messages waiting in all mailboxes
    longest: int  #: the longest mailbox
    reductions: int | None  #: sum of ``reductions``, None while not reported


def find_pid(key: str) -> PID | None:
    """The live PID whose :func:`pid_key` is ``key``, or None."""
    for pid in processes():
        if pid_key(pid) == key:
            return pid
    return None


def rss_bytes() -> int:
    """Resident memory of this OS process: ``/proc/self/statm`` where it exists, else
    the peak (``getrusage``'s ``ru_maxrss``)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_estimate(info: dict[str, Any]) -> int:
    """A rough per-process estimate in bytes: runtime fields, the shallow size of the
    state, and ``MESSAGE_BYTES`` per queued message.  Not a measurement."""
    try:
        state = sys.getsizeof(info.get("state"))
    except TypeError:
        state = 0
    return PROCESS_BYTES + state + MESSAGE_BYTES * int(info.get("message_queue_len", 0))


class Collector:
    """Telemetry handlers, counters, the crash log, and the Prometheus registry of one
    observer.  Handlers run in whatever process emits the event (any thread): they
    only append to deques and bump counters."""

    def __init__(self) -> None:
        self.started: float = time.time()
        self.handler_id: str = f"anyotp.observer.{next(_ids)}"
        self.lock: threading.Lock = threading.Lock()
        self.crashes: deque[dict[str, Any]] = deque(maxlen=CRASH_LOG_SIZE)
        self.crash_times: deque[float] = deque(maxlen=10_000)
        self.restart_times: deque[float] = deque(maxlen=10_000)
        self.restarts: Counter[tuple[str, str]] = Counter()  # (supervisor key, child id)
        self.calls: int = 0
        self.loop_lag: float = 0.0
        self.loop_lag_max: float = 0.0
        self.backend: str = ""
        self._rate_at = time.monotonic()
        self._rate_calls = 0
        self._rate_reductions: int | None = None
        self.rates: dict[str, float | None] = {"calls": 0.0, "messages": None}
        self._table: TableStats | None = None
        self._table_at = 0.0
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        self.m_restarts: PromCounter = PromCounter(
            "anyotp_supervisor_restarts",
            "Children restarted by supervisors",
            ["supervisor"],
            registry=self.registry,
        )
        self.m_crashes: PromCounter = PromCounter(
            "anyotp_process_crashes",
            "Processes that exited abnormally",
            ["class"],
            registry=self.registry,
        )
        self.m_calls: PromCounter = PromCounter(
            "anyotp_calls",
            "Calls made with anyotp.call, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.m_call_seconds: PromHistogram = PromHistogram(
            "anyotp_call_duration_seconds",
            "Latency of anyotp.call, from send to reply",
            registry=self.registry,
            buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        )
        self.registry.register(_SystemMetrics(self))

    # -------------------------------------------------------------- telemetry

    def attach(self) -> None:
        telemetry.attach_many(
            self.handler_id,
            [
                telemetry.PROCESS_EXIT,
                telemetry.SUPERVISOR_RESTART,
                telemetry.CALL_STOP,
                telemetry.CALL_EXCEPTION,
            ],
            self._on_event,
        )

    def detach(self) -> None:
        telemetry.detach(self.handler_id)

    def _on_event(
        self, event: tuple[str, ...], measurements: dict[str, Any], meta: dict[str, Any], _: Any
    ) -> None:
        if event == telemetry.CALL_STOP or event == telemetry.CALL_EXCEPTION:
            self.calls += 1
            ok = event == telemetry.CALL_STOP
            self.m_calls.labels("ok" if ok else "error").inc()
            self.m_call_seconds.observe(measurements["duration"])
        elif event == telemetry.PROCESS_EXIT:
            reason = meta["reason"]
            if is_abnormal(reason):
                self._crashed(meta, reason)
        elif event == telemetry.SUPERVISOR_RESTART:
            self.restart_times.append(time.monotonic())
            sup = meta["supervisor"]
            with self.lock:
                self.restarts[(pid_key(sup), str(meta["child_id"]))] += 1
            self.m_restarts.labels(meta["class"]).inc()

    def _crashed(self, meta: dict[str, Any], reason: Any) -> None:
        self.crash_times.append(time.monotonic())
        self.m_crashes.labels(meta["class"]).inc()
        tb = ""
        if isinstance(reason, BaseException):
            tb = "".join(traceback.format_exception(reason))
        pid, parent = meta["pid"], meta["parent"]
        self.crashes.appendleft(
            {
                "id": next(_ids),
                "time": time.time(),
                "pid": repr(pid),
                "key": pid_key(pid),
                "class": meta["class"],
                "name": short_repr(meta["name"]) if meta["name"] is not None else None,
                "supervisor": repr(parent) if parent is not None else None,
                "supervisor_key": pid_key(parent) if parent is not None else None,
                "reason": short_repr(reason, 500),
                "traceback": tb[-20_000:],
            }
        )

    def restart_count(self, sup: PID, child_id: str | None) -> int:
        with self.lock:
            return self.restarts.get((pid_key(sup), str(child_id)), 0)

    # ------------------------------------------------------------- samplers

    async def sample_forever(self, interval: float = 0.25) -> None:
        """Measure how late ``anyio.sleep(interval)`` wakes (the loop lag), update the
        rates, and emit mailbox samples when something listens for them."""
        self.backend = sniffio.current_async_library()
        last_tick = time.monotonic()
        while True:
            t0 = time.monotonic()
            await anyio.sleep(interval)
            lag = max(0.0, time.monotonic() - t0 - interval)
            self.loop_lag = lag
            self.loop_lag_max = max(lag, self.loop_lag_max * 0.9)
            if time.monotonic() - last_tick >= 1.0:
                last_tick = time.monotonic()
                self.update_rates((await self.table()).reductions)
                telemetry.sample_mailboxes()

    def update_rates(self, reductions: int | None) -> None:
        now = time.monotonic()
        dt = now - self._rate_at
        if dt <= 0:
            return
        calls = self.calls
        self.rates["calls"] = (calls - self._rate_calls) / dt
        if reductions is not None and self._rate_reductions is not None:
            self.rates["messages"] = max(0, reductions - self._rate_reductions) / dt
        self._rate_at, self._rate_calls, self._rate_reductions = now, calls, reductions

    # --------------------------------------------------------------- reports

    def per_minute(self, times: deque[float]) -> int:
        since = time.monotonic() - 60.0
        return sum(1 for t in list(times) if t >= since)

    async def table(self) -> TableStats:
        """A summary of the process table, at most :data:`TABLE_MAX_AGE` seconds old."""
        now = time.monotonic()
        if self._table is not None and now - self._table_at < TABLE_MAX_AGE:
            return self._table
        rows = await read_table()
        by_behaviour: Counter[str] = Counter()
        queued = longest = reductions = 0
        seen_reductions = False
        for _, info in rows:
            by_behaviour[info.get("behaviour", info["class"])] += 1
            n = info["message_queue_len"]
            queued += n
            longest = max(longest, n)
            r = info.get("reductions")
            if isinstance(r, int):
                reductions += r
                seen_reductions = True
        self._table = TableStats(
            node=rows[0][0].node if rows else "",
            processes=len(rows),
            by_behaviour=dict(sorted(by_behaviour.items())),
            queued=queued,
            longest=longest,
            reductions=reductions if seen_reductions else None,
        )
        self._table_at = time.monotonic()
        return self._table

    async def system(self) -> dict[str, Any]:
        """The system page's numbers."""
        table = await self.table()
        return {
            "node": table.node,
            "processes": table.processes,
            "by_behaviour": table.by_behaviour,
            "queued_messages": table.queued,
            "calls_per_second": self.rates["calls"],
            "messages_per_second": self.rates["messages"],
            "restarts_per_minute": self.per_minute(self.restart_times),
            "crashes_per_minute": self.per_minute(self.crash_times),
            "crash_log_size": len(self.crashes),
            "last_crash_id": self.crashes[0]["id"] if self.crashes else 0,
            "loop_lag": self.loop_lag,
            "loop_lag_max": self.loop_lag_max,
            "memory_rss": rss_bytes(),
            "uptime": time.time() - self.started,
            "backend": self.backend,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
        }


class _SystemMetrics(PromCollector):
    """Gauges computed at scrape time from the live process table."""

    def __init__(self, owner: Collector) -> None:
        self.owner = owner

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        # The table summary was refreshed (asynchronously) by the /metrics endpoint
        # just before: collecting reads no process.
        owner = self.owner
        table = owner._table or TableStats("", 0, {}, 0, 0, None)
        g = GaugeMetricFamily(
            "anyotp_processes", "Live processes, by behaviour", labels=["behaviour"]
        )
        for behaviour, n in table.by_behaviour.items():
            g.add_metric([behaviour], n)
        yield g
        yield GaugeMetricFamily(
            "anyotp_mailbox_messages", "Messages waiting in all mailboxes", value=table.queued
        )
        yield GaugeMetricFamily(
            "anyotp_mailbox_max_length", "Length of the longest mailbox", value=table.longest
        )
        yield CounterMetricFamily(
            "anyotp_messages_handled",
            "Messages handled by all live processes (their reductions; 0 if not tracked)",
            value=table.reductions or 0,
        )
        yield GaugeMetricFamily(
            "anyotp_loop_lag_seconds",
            "How late the event loop woke a sleeping task, last sample",
            value=owner.loop_lag,
        )
        yield GaugeMetricFamily(
            "anyotp_memory_rss_bytes", "Resident memory of the OS process", value=rss_bytes()
        )
        yield GaugeMetricFamily(
            "anyotp_uptime_seconds",
            "Seconds since the observer started",
            value=time.time() - owner.started,
        )
