"""anyotp.observer over HTTP: JSON endpoints, live events, /metrics, security, and
``anyotp.run(observer=...)``; a real Hypercorn on a free port, on asyncio and trio."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import anyotp
from anyotp import (
    PID,
    Actor,
    ChildSpec,
    GenServer,
    StartError,
    Supervisor,
    call,
    cast,
    process_info,
    processes,
    replace_state,
    telemetry,
)
from anyotp.observer import Observer
from anyotp.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent


class Worker(GenServer):
    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return request, state

    def format_status(self, state: Any) -> Any:
        return "<hidden>"


class Workers(Supervisor):
    def child_specs(self) -> list[ChildSpec]:
        return [ChildSpec(id=f"w{i}", actor_class=Worker) for i in (1, 2)]


class App(Supervisor):
    def child_specs(self, **observer: Any) -> list[ChildSpec]:
        return [
            ChildSpec(id="workers", actor_class=Workers),
            Observer.child_spec(port=0, **observer),
        ]


class Running:
    def __init__(self, app: PID, client: httpx.AsyncClient, base: str) -> None:
        self.app, self.client, self.base = app, client, base

    async def json(self, path: str) -> Any:
        response = await self.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def child(self, *path: str) -> PID:
        sup = self.app
        for child_id in path:
            rows = {row.id: row.pid for row in await Supervisor.which_children(sup)}
            pid = rows[child_id]
            assert pid is not None
            sup = pid
        return sup


async def start_app(tg: Any, **observer: Any) -> tuple[PID, str]:
    app = await App.start(task_group=tg, **observer)
    rows = {row.id: row.pid for row in await Supervisor.which_children(app)}
    obs = rows["observer"]
    assert obs is not None
    host, port = await Observer.address(obs)
    return app, f"http://{host}:{port}"


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with anyio.create_task_group() as tg:
        app, base = await start_app(tg)
        async with httpx.AsyncClient(base_url=base) as client:
            yield Running(app, client, base)
        tg.cancel_scope.cancel()


def key(pid: PID) -> str:
    return repr(pid)[5:-1]


pytestmark = pytest.mark.anyio


class TestPages:
    async def test_the_index_page_and_its_static_files_are_served(self, running: Running) -> None:
        page = await running.client.get("/")
        assert page.status_code == 200
        assert 'src="static/app.js"' in page.text
        script = await running.client.get("/static/app.js")
        assert script.status_code == 200
        assert "textContent" in script.text

    async def test_every_response_forbids_inline_and_foreign_scripts(
        self, running: Running
    ) -> None:
        page = await running.client.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"


class TestSystem:
    async def test_system_counts_processes_by_behaviour(self, running: Running) -> None:
        system = await running.json("/api/system")
        assert system["processes"] == len(processes())
        assert system["by_behaviour"] == {"GenServer": 3, "Supervisor": 2}
        assert system["backend"] in ("asyncio", "trio")
        assert system["memory_rss"] > 0
        assert system["uptime"] >= 0

    async def test_nodes_lists_the_local_node(self, running: Running) -> None:
        [node] = await running.json("/api/nodes")
        assert node == {"node": running.app.node, "local": True}


class TestProcesses:
    async def test_the_process_table_has_one_row_per_live_process(self, running: Running) -> None:
        rows = await running.json("/api/processes")
        assert [r["pid"] for r in rows] == [repr(p) for p in processes()]
        w1 = await running.child("workers", "w1")
        [row] = [r for r in rows if r["pid"] == repr(w1)]
        assert row["class"] == "Worker"
        assert row["behaviour"] == "GenServer"
        assert row["status"] == "running"
        assert row["message_queue_len"] == 0
        assert row["memory"] > 0

    async def test_process_detail_shows_links_state_and_queued_messages(
        self, running: Running
    ) -> None:
        w1 = await running.child("workers", "w1")
        entered, release = anyio.Event(), anyio.Event()

        async def hold(state: Any) -> Any:  # keeps w1 busy: casts wait in its mailbox
            entered.set()
            await release.wait()
            return state

        async with anyio.create_task_group() as tg:
            tg.start_soon(replace_state, w1, hold)
            await entered.wait()
            await cast(w1, ("job", 1))
            await cast(w1, ("job", 2))
            detail = await running.json(f"/api/processes/{key(w1)}")
            release.set()
        assert detail["message_queue_len"] == 2
        assert detail["messages"] == ["('$gen_cast', ('job', 1))", "('$gen_cast', ('job', 2))"]
        assert detail["state"] == "'<hidden>'"  # through format_status
        workers = await running.child("workers")
        assert detail["parent"] == {"pid": repr(workers), "key": key(workers)}
        assert detail["links"] == [{"pid": repr(workers), "key": key(workers)}]

    async def test_a_dead_or_unknown_process_is_a_404(self, running: Running) -> None:
        response = await running.client.get("/api/processes/0.999999")
        assert response.status_code == 404
        assert response.json() == {"error": "no live process 0.999999"}


class TestTreeAndKill:
    async def test_the_tree_shows_every_supervisor_and_child(self, running: Running) -> None:
        roots = await running.json("/api/tree")
        [app] = [r for r in roots if r["class"] == "App"]
        assert [c["id"] for c in app["children"]] == ["workers", "observer"]
        workers = app["children"][0]
        assert [(c["id"], c["status"], c["restarts"]) for c in workers["children"]] == [
            ("w1", "running", 0),
            ("w2", "running", 0),
        ]

    async def test_kill_makes_the_supervisor_restart_the_child_and_logs_the_crash(
        self, running: Running
    ) -> None:
        w1 = await running.child("workers", "w1")
        response = await running.client.post(
            f"/api/processes/{key(w1)}/kill", json={"reason": "boom"}
        )
        assert response.json() == {"killed": repr(w1), "reason": "boom"}

        async def restarted() -> bool:
            return await running.child("workers", "w1") != w1

        await wait_until(restarted)
        roots = await running.json("/api/tree")
        [app] = [r for r in roots if r["class"] == "App"]
        [w1_node, _] = app["children"][0]["children"]
        assert w1_node["restarts"] == 1
        assert w1_node["pid"]["pid"] != repr(w1)
        [crash] = await running.json("/api/crashes")
        workers = await running.child("workers")
        assert crash["pid"] == repr(w1)
        assert crash["reason"] == "'boom'"
        assert crash["supervisor"] == repr(workers)
        system = await running.json("/api/system")
        assert system["restarts_per_minute"] == 1
        assert system["crashes_per_minute"] == 1

    async def test_the_crash_log_keeps_the_traceback_of_a_crash(self, running: Running) -> None:
        class Fragile(GenServer):
            async def handle_cast(self, request: Any, state: Any) -> Any:
                raise ValueError(f"bad request {request!r}")

        async with anyio.create_task_group() as tg:
            pid = await Fragile.start(task_group=tg)
            await cast(pid, "x")
            crashes = await wait_until_json(running, "/api/crashes")
        [crash] = crashes
        assert crash["class"] == "Fragile"
        assert crash["reason"] == "ValueError(\"bad request 'x'\")"
        assert "Traceback (most recent call last)" in crash["traceback"]
        assert "ValueError: bad request 'x'" in crash["traceback"]

    async def test_a_reason_that_is_not_a_short_string_is_refused(self, running: Running) -> None:
        w1 = await running.child("workers", "w1")
        response = await running.client.post(f"/api/processes/{key(w1)}/kill", json={"reason": 1})
        assert response.status_code == 400
        assert "reason must be a non-empty string" in response.json()["error"]


async def wait_until_json(running: Running, path: str) -> Any:
    async def got() -> Any:
        return await running.json(path)

    return await wait_until(got)


class TestLiveEvents:
    async def test_the_event_stream_pushes_system_ticks(self, running: Running) -> None:
        # A raw connection: the stream never ends, and reading it with a client's
        # async iterators leaves them unfinished.
        host, port = running.base.removeprefix("http://").split(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b"GET /api/events HTTP/1.0\r\nHost: x\r\n\r\n")
            received = b""
            while (tick := re.search(rb"event: tick\ndata: (.*)\n", received)) is None:
                received += await stream.receive()
        assert b"content-type: text/event-stream" in received.lower()
        assert json.loads(tick[1])["processes"] == len(processes())


class TestMetrics:
    async def test_metrics_parse_as_prometheus_text(self, running: Running) -> None:
        w1 = await running.child("workers", "w1")
        for i in range(5):
            assert await call(w1, i) == i
        anyotp.exit_process(w1, "kill")

        async def restarted() -> bool:
            return await running.child("workers", "w1") != w1

        await wait_until(restarted)
        response = await running.client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        by_behaviour = {
            s.labels["behaviour"]: s.value for s in families["anyotp_processes"].samples
        }
        assert by_behaviour == {"GenServer": 3.0, "Supervisor": 2.0}
        [restarts] = families["anyotp_supervisor_restarts"].samples[:1]
        assert restarts.labels == {"supervisor": "Workers"}
        assert restarts.value == 1.0
        crashes = families["anyotp_process_crashes"].samples[0]
        assert (crashes.labels, crashes.value) == ({"class": "Worker"}, 1.0)
        count = [
            s for s in families["anyotp_call_duration_seconds"].samples if s.name.endswith("_count")
        ]
        assert count[0].value >= 5
        assert families["anyotp_loop_lag_seconds"].samples[0].value >= 0
        assert families["anyotp_mailbox_messages"].samples[0].value == 0
        assert families["anyotp_memory_rss_bytes"].samples[0].value > 0


class TestSecurity:
    def test_a_non_loopback_host_without_a_token_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"host='0.0.0.0'.*without a token.*token="):
            Observer.child_spec(host="0.0.0.0")

    async def test_starting_on_a_non_loopback_host_without_a_token_fails(self) -> None:
        async with anyio.create_task_group() as tg:
            with pytest.raises(StartError, match="without a token"):
                await Observer.start(host="0.0.0.0", port=0, task_group=tg)

    def test_a_short_token_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 8 characters"):
            Observer.child_spec(token="abc")

    async def test_with_a_token_every_request_needs_it(self) -> None:
        token = "s3cret-token"
        async with anyio.create_task_group() as tg:
            _, base = await start_app(tg, token=token)
            async with httpx.AsyncClient(base_url=base) as client:
                for path in ("/", "/api/system", "/metrics", "/static/app.js"):
                    refused = await client.get(path)
                    assert refused.status_code == 401, path
                    assert "?token=" in refused.json()["error"]
                assert (
                    await client.get("/api/system", params={"token": "wrong"})
                ).status_code == 401
                assert (await client.get("/api/system", params={"token": token})).status_code == 200
                bearer = {"authorization": f"Bearer {token}"}
                assert (await client.get("/metrics", headers=bearer)).status_code == 200
                page = await client.get("/", params={"token": token})
                assert 'src="static/app.js?token=s3cret-token"' in page.text
            tg.cancel_scope.cancel()

    async def test_kill_can_be_disabled(self) -> None:
        async with anyio.create_task_group() as tg:
            app, base = await start_app(tg, allow_kill=False)
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/api/config")).json()["allow_kill"] is False
                response = await client.post(f"/api/processes/{key(app)}/kill", json={})
                assert response.status_code == 403
                assert "allow_kill=False" in response.json()["error"]
            assert anyotp.is_alive(app)
            tg.cancel_scope.cancel()

    async def test_a_taken_port_fails_the_start(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            async with anyio.create_task_group() as tg:
                with pytest.raises(StartError, match="Address already in use"):
                    await Observer.start(port=port, task_group=tg)

    async def test_stopping_the_observer_detaches_its_telemetry_handlers(self) -> None:
        async with anyio.create_task_group() as tg:
            await Observer.start(port=0, task_group=tg)
            assert [h.id for h in telemetry.list_handlers()] != []
            tg.cancel_scope.cancel()
        assert telemetry.list_handlers() == []


class Probe(Actor):
    """The root of an application run with anyotp.run(observer=...): it finds the
    observer, asks it for /api/system, and stops the program."""

    seen: ClassVar[dict[str, Any]] = {}

    async def run(self, state: Any) -> Any:
        async def observer() -> PID | None:
            for pid in processes():
                info = process_info(pid)
                if info is not None and info["class"] == "Observer":
                    return pid
            return None

        pid = await wait_until(observer)
        host, port = await Observer.address(pid)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/api/system")
        Probe.seen = response.json()
        self.stop()


class TestRun:
    def test_run_with_observer_serves_it_next_to_the_application(self, anyio_backend: Any) -> None:
        backend = anyio_backend[0]
        assert anyotp.run(Probe, backend=backend, signals=(), observer=0) == 0
        assert Probe.seen["by_behaviour"] == {"Actor": 1, "GenServer": 1}
        assert Probe.seen["backend"] == backend

    def test_run_stops_the_application_when_the_observer_cannot_start(
        self, anyio_backend: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            assert anyotp.run(Workers, backend=anyio_backend[0], signals=(), observer=port) == 1
        assert "the observer failed to start, stopping the application" in caplog.text
        assert "Address already in use" in caplog.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TestDemo:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_the_demo_stays_up_with_the_observer_until_interrupted(self, backend: str) -> None:
        port = free_port()
        demo = subprocess.Popen(
            [
                *(sys.executable, "examples/demo.py", "--observer", "--port", str(port)),
                *("--limit", "30", "--backend", backend, str(ROOT / "src")),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert demo.stdout is not None
            line = demo.stdout.readline()
            assert f"observer on http://127.0.0.1:{port}/" in line

            def tree() -> Any:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/api/tree", timeout=2).json()
                except httpx.TransportError:
                    return None

            roots = anyio.run(wait_until, tree, 15.0, 0.05, "the observer answers")
            assert {r["class"] for r in roots} == {"App", "Observer"}
        finally:
            demo.send_signal(signal.SIGINT)
            _, err = demo.communicate(timeout=15)
        assert demo.returncode == 0, err


class TestPackaging:
    def test_the_ui_files_ship_inside_the_package(self) -> None:
        from importlib.resources import files

        static = files("anyotp.observer") / "static"
        for name in ("index.html", "app.js", "style.css"):
            assert (static / name).is_file(), name
        script = (static / "app.js").read_text()
        assert ".innerHTML" not in script
        assert "eval(" not in script
