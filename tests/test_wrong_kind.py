"""Requests meant for one kind of process, aimed at another: a clear error, no harm."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyotp import (
    Agent,
    DynamicSupervisor,
    GenServer,
    Supervisor,
    SupervisorError,
    call,
    is_alive,
)
from anyotp.sync import GenServer as SyncGenServer

pytestmark = pytest.mark.anyio


class Strict(GenServer):
    """A worker with no catch-all clause: any unknown call crashes it."""

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case "ping":
                return "pong", state


class Echo(GenServer):
    """A server that replies to anything with the request itself."""

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return request, state


class SyncWorker(SyncGenServer[None]):
    def handle_call(self, message: dict[str, Any], state: None) -> tuple[Any, None]:
        return message, state


class TestSupervisorRequestsToWorkers:
    async def test_which_children_of_a_worker_is_an_error_naming_it_and_the_worker_lives(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Strict.start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"is a Strict, not a supervisor"):
                await Supervisor.which_children(pid)
            with pytest.raises(SupervisorError, match=r"is a Strict, not a supervisor"):
                await DynamicSupervisor.which_children(pid)
            assert is_alive(pid)
            assert await call(pid, "ping") == "pong"
            tg.cancel_scope.cancel()

    async def test_count_children_of_a_server_that_answers_anything_is_not_its_reply(
        self,
    ) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            with pytest.raises(SupervisorError, match=r"count_children: .* is a Echo"):
                await Supervisor.count_children(pid)
            tg.cancel_scope.cancel()

    async def test_a_sync_server_answers_a_supervisor_request_with_the_same_error(
        self,
    ) -> None:
        server = SyncWorker()
        await anyio.to_thread.run_sync(server.start)
        try:
            with pytest.raises(SupervisorError, match=r"is a SyncWorker, not a supervisor"):
                await Supervisor.which_children(server.pid)
        finally:
            await anyio.to_thread.run_sync(server.stop)


class TestAgentRequestsToOthers:
    async def test_agent_get_on_a_server_that_answers_anything_raises_naming_it(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Echo.start(task_group=tg)
            with pytest.raises(TypeError, match=r"is a Echo, not an Agent"):
                await Agent.get(pid, lambda s: s)
            with pytest.raises(TypeError, match=r"not an Agent"):
                await Agent.update(pid, lambda s: s)
            assert is_alive(pid)
            tg.cancel_scope.cancel()

    async def test_a_supervisor_request_to_an_agent_names_the_agent(self) -> None:
        async with anyio.create_task_group() as tg:
            pid = await Agent.start(lambda: 1, task_group=tg)
            with pytest.raises(SupervisorError, match=r"is a Agent, not a supervisor"):
                await Supervisor.which_children(pid)
            assert await Agent.get(pid, lambda s: s + 1) == 2
            tg.cancel_scope.cancel()
