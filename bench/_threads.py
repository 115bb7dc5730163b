"""Thread-based rows: the raw ``queue.Queue`` + worker-thread baseline, pykka
(``ThreadingActor``: ``ask``/``tell``) and the ``anyotp.sync`` thread API.

Messages are dicts (``{"action": "incr"}``), as the ``anyotp.sync`` API takes them.
A raw call puts ``(message, reply)`` on the server's ``queue.Queue`` and blocks on
``reply``; two plain kinds of reply are measured and the faster one is reported:
a ``queue.Queue(maxsize=1)`` or a ``threading.Event`` plus a slot.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import Round, check_count, rss_bytes

STOP = object()
INCR = {"action": "incr"}
GET = {"action": "get"}


class EventReply:
    """A one-shot reply: a ``threading.Event`` plus a slot."""

    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None

    def put(self, value: Any) -> None:
        self.value = value
        self.event.set()

    def get(self) -> Any:
        self.event.wait()
        return self.value


def QueueReply() -> queue.Queue[Any]:  # noqa: N802 - a factory standing in for a class
    return queue.Queue(maxsize=1)


REPLY_KINDS: dict[str, Callable[[], Any]] = {
    "queue.Queue(maxsize=1)": QueueReply,
    "threading.Event + slot": EventReply,
}


def counter_server(q: queue.Queue[Any]) -> None:
    count = 0
    while True:
        msg, reply = q.get()
        if msg is STOP:
            return
        if msg["action"] == "incr":
            count += 1
        if reply is not None:
            reply.put(count)


def raw_call(q: queue.Queue[Any], msg: Any, make_reply: Callable[[], Any]) -> Any:
    reply = make_reply()
    q.put((msg, reply))
    return reply.get()


def _start_server() -> tuple[queue.Queue[Any], threading.Thread]:
    q: queue.Queue[Any] = queue.Queue()
    t = threading.Thread(target=counter_server, args=(q,), daemon=True)
    t.start()
    return q, t


# ------------------------------------------------------------------------ raw


def raw_call_latency(size: dict[str, int]) -> Round:
    n = size["n"]
    times: dict[str, float] = {}
    errors: list[str] = []
    for kind, make_reply in REPLY_KINDS.items():
        q, t = _start_server()
        t0 = time.perf_counter()
        for _ in range(n):
            reply = make_reply()
            q.put((INCR, reply))
            reply.get()
        times[kind] = (time.perf_counter() - t0) / n * 1e6
        check_count(errors, f"counter after the calls ({kind})", raw_call(q, GET, make_reply), n)
        q.put((STOP, None))
        t.join()
    best = min(times, key=lambda k: times[k])
    notes = {"reply": best, "others": {k: v for k, v in times.items() if k != best}}
    return Round({"us_per_call": times[best]}, errors, notes)


def raw_cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    q, t = _start_server()
    t0 = time.perf_counter()
    for _ in range(n):
        q.put((INCR, None))
    got = raw_call(q, GET, QueueReply)
    dt = time.perf_counter() - t0
    q.put((STOP, None))
    t.join()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


def _run_clients(clients: int, body: Callable[[], None]) -> float:
    """Run ``body`` in ``clients`` threads released together; the wall time."""
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        barrier.wait()
        body()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


def raw_fan_in(size: dict[str, int]) -> Round:
    clients, calls = size["clients"], size["calls"]
    q, t = _start_server()

    def body() -> None:
        for _ in range(calls):
            raw_call(q, INCR, QueueReply)

    dt = _run_clients(clients, body)
    got = raw_call(q, GET, QueueReply)
    q.put((STOP, None))
    t.join()
    r = Round({"calls_per_s": clients * calls / dt})
    check_count(r.errors, "counter after the calls", got, clients * calls)
    return r


def raw_spawn(size: dict[str, int]) -> Round:
    n = size["n"]
    servers: list[tuple[queue.Queue[Any], threading.Thread]] = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        q, t = _start_server()  # Thread.start() waits until the thread runs
        raw_call(q, INCR, QueueReply)
        servers.append((q, t))
    t1 = time.perf_counter()
    rss1 = rss_bytes()
    for q, _t in servers:
        q.put((STOP, None))
    for _q, t in servers:
        t.join()
    t2 = time.perf_counter()
    return Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={"start": (t1 - t0) / n * 1e6, "stop": (t2 - t1) / n * 1e6, "stop_how": "message"},
    )


def raw_ping_pong(size: dict[str, int]) -> Round:
    n = size["n"]
    qa: queue.Queue[Any] = queue.Queue()
    qb: queue.Queue[Any] = queue.Queue()
    got = [0]

    def pinger() -> None:
        for _ in range(n):
            qb.put("ping")
            if qa.get() == "pong":
                got[0] += 1
        qb.put(STOP)

    def ponger() -> None:
        while True:
            m = qb.get()
            if m is STOP:
                return
            qa.put("pong")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=ponger), threading.Thread(target=pinger)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t0
    r = Round({"round_trips_per_s": n / dt})
    check_count(r.errors, "pongs received", got[0], n)
    return r


# ----------------------------------------------------------------------- pykka


def _pykka_counter() -> Any:
    import pykka

    class PCounter(pykka.ThreadingActor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: Any) -> Any:
            if message["action"] == "incr":
                self.count += 1
            return self.count

    return PCounter


def pykka_call_latency(size: dict[str, int]) -> Round:
    n = size["n"]
    ref = _pykka_counter().start()
    t0 = time.perf_counter()
    for _ in range(n):
        ref.ask(INCR)
    dt = time.perf_counter() - t0
    got = ref.ask(GET)
    ref.stop()
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


def pykka_cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    ref = _pykka_counter().start()
    t0 = time.perf_counter()
    for _ in range(n):
        ref.tell(INCR)
    got = ref.ask(GET)
    dt = time.perf_counter() - t0
    ref.stop()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


def pykka_fan_in(size: dict[str, int]) -> Round:
    clients, calls = size["clients"], size["calls"]
    ref = _pykka_counter().start()

    def body() -> None:
        for _ in range(calls):
            ref.ask(INCR)

    dt = _run_clients(clients, body)
    got = ref.ask(GET)
    ref.stop()
    r = Round({"calls_per_s": clients * calls / dt})
    check_count(r.errors, "counter after the calls", got, clients * calls)
    return r


def pykka_spawn(size: dict[str, int]) -> Round:
    n = size["n"]
    cls = _pykka_counter()
    refs = []
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        ref = cls.start()
        ref.ask(INCR)
        refs.append(ref)
    t1 = time.perf_counter()
    rss1 = rss_bytes()
    futures = [ref.stop(block=False) for ref in refs]
    for f in futures:
        f.get()
    t2 = time.perf_counter()
    r = Round(
        {
            "us_per_start_stop": (t2 - t0) / n * 1e6,
            "kib_per_server": (rss1 - rss0) / n / 1024,
        },
        notes={
            "start": (t1 - t0) / n * 1e6,
            "stop": (t2 - t1) / n * 1e6,
            "stop_how": "ref.stop(block=False) each, then wait",
        },
    )
    check_count(r.errors, "actors still alive", sum(ref.is_alive() for ref in refs), 0)
    return r


def pykka_ping_pong(size: dict[str, int]) -> Round:
    import pykka

    n = size["n"]
    done = threading.Event()
    out = {"pongs": 0}

    class Ponger(pykka.ThreadingActor):  # type: ignore[misc]
        def on_receive(self, message: Any) -> None:
            message[1].tell("pong")

    class Pinger(pykka.ThreadingActor):  # type: ignore[misc]
        def __init__(self, peer: Any) -> None:
            super().__init__()
            self.peer = peer
            self.left = n

        def on_receive(self, message: Any) -> None:
            if message == "pong":
                out["pongs"] += 1
                self.left -= 1
            if self.left == 0:
                done.set()
                return
            self.peer.tell(("ping", self.actor_ref))

    b = Ponger.start()
    a = Pinger.start(b)
    t0 = time.perf_counter()
    a.tell("go")
    done.wait()
    dt = time.perf_counter() - t0
    a.stop()
    b.stop()
    r = Round({"round_trips_per_s": n / dt})
    check_count(r.errors, "pongs received", out["pongs"], n)
    return r


# =========================================================================
# anyotp.sync: the synchronous API (a thread process on the same core as the async
# API: one mailbox, one decoder, one call).
#     class Counter(anyotp.sync.GenServer):
#         def init(self) -> int
#         def handle_call(self, message: dict, state) -> (reply, state)
#         def handle_cast(self, message: dict, state) -> state
#     server.start(); server.call({...}, timeout=None); server.cast({...}); server.stop()
# call()'s default timeout is None.  If `import anyotp.sync` fails, the worker
# reports these rows as "skipped: anyotp.sync not available".
# =========================================================================


def sync_available() -> str | None:
    """None if ``anyotp.sync`` imports, else why not."""
    try:
        import anyotp.sync  # noqa: F401
    except Exception as e:
        return f"anyotp.sync not available ({type(e).__name__}: {e})"
    return None


def _sync_server() -> Any:
    import anyotp.sync

    class SyncCounter(anyotp.sync.GenServer):  # type: ignore[misc,name-defined,unused-ignore]
        def init(self) -> int:
            return 0

        def handle_call(self, message: dict[str, Any], state: int) -> tuple[int, int]:
            if message["action"] == "incr":
                state += 1
            return state, state

        def handle_cast(self, message: dict[str, Any], state: int) -> int:
            if message["action"] == "incr":
                state += 1
            return state

    server = SyncCounter()
    started = server.start()
    # Tolerate a start() that returns a handle rather than None/self.
    if started is not None and hasattr(started, "call"):
        return started
    return server


def _sync_call_latency(size: dict[str, int], default_timeout: bool) -> Round:
    """``server.call(msg)`` as written by default, or with an explicit ``timeout=5.0``
    (the default timeout of anyotp.sync is None, so the second row covers the
    finite-timeout path)."""
    n = size["n"]
    server = _sync_server()
    try:
        t0 = time.perf_counter()
        if default_timeout:
            for _ in range(n):
                server.call(INCR)
        else:
            for _ in range(n):
                server.call(INCR, timeout=5.0)
        dt = time.perf_counter() - t0
        got = server.call(GET, timeout=None)
    finally:
        server.stop()
    r = Round({"us_per_call": dt / n * 1e6})
    check_count(r.errors, "counter after the calls", got, n)
    return r


def sync_call_latency(size: dict[str, int]) -> Round:
    return _sync_call_latency(size, default_timeout=True)


def sync_call_latency_timeout_5(size: dict[str, int]) -> Round:
    return _sync_call_latency(size, default_timeout=False)


def sync_cast_throughput(size: dict[str, int]) -> Round:
    n = size["n"]
    server = _sync_server()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            server.cast(INCR)
        got = server.call(GET, timeout=None)
        dt = time.perf_counter() - t0
    finally:
        server.stop()
    r = Round({"msgs_per_s": n / dt})
    check_count(r.errors, "count seen by the final call", got, n)
    return r


ROUNDS: dict[tuple[str, str], Callable[[dict[str, int]], Round]] = {
    ("call_latency", "raw"): raw_call_latency,
    ("cast_throughput", "raw"): raw_cast_throughput,
    ("fan_in", "raw"): raw_fan_in,
    ("spawn", "raw"): raw_spawn,
    ("ping_pong", "raw"): raw_ping_pong,
    ("call_latency", "pykka"): pykka_call_latency,
    ("cast_throughput", "pykka"): pykka_cast_throughput,
    ("fan_in", "pykka"): pykka_fan_in,
    ("spawn", "pykka"): pykka_spawn,
    ("ping_pong", "pykka"): pykka_ping_pong,
    ("sync_call", "raw"): raw_call_latency,
    ("sync_call", "anyotp.sync"): sync_call_latency,
    ("sync_call", "anyotp.sync-timeout-5"): sync_call_latency_timeout_5,
    ("sync_cast", "raw"): raw_cast_throughput,
    ("sync_cast", "anyotp.sync"): sync_cast_throughput,
}
