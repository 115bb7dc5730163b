"""The observer's web application: JSON endpoints, server-sent events, ``/metrics``,
and the static UI.  A Starlette app; the process table is read through public API
only (``processes``, ``process_info``, ``supervision_tree``, ``exit_process``)."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._core import PID, exit_process
from .._introspection import TreeNode, process_info, supervision_tree
from ._collector import Collector, find_pid, memory_estimate, pid_key, read_table, short_repr

STATIC = Path(__file__).parent / "static"
#: How often the live stream pushes a system summary, in seconds.
TICK = 1.0
#: Headers on every response: the page loads nothing from elsewhere and runs no
#: inline script.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """ASGI middleware: checks the token (``?token=`` or ``Authorization: Bearer``)
    when one is set, and adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None and not self._authorised(scope):
            response = JSONResponse(
                {"error": "this observer needs its token: add ?token=... to the URL"},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
            await response(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    def _authorised(self, scope: Scope) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value.startswith(b"Bearer "):
                return hmac.compare_digest(value[7:].strip(), expected)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0].encode()
        return hmac.compare_digest(given, expected)

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        return wrapped


def _pid(pid: PID | None) -> dict[str, str] | None:
    return None if pid is None else {"pid": repr(pid), "key": pid_key(pid)}


def _row(pid: PID, info: dict[str, Any]) -> dict[str, Any]:
    reductions = info.get("reductions")
    name = info["registered_name"]
    return {
        "pid": repr(pid),
        "key": pid_key(pid),
        "name": short_repr(name, 200) if name is not None else None,
        "class": info["class"],
        "behaviour": info.get("behaviour", info["class"]),
        "status": info["status"],
        "message_queue_len": info["message_queue_len"],
        "reductions": reductions if isinstance(reductions, int) else None,
        "current_callback": info["current_callback"],
        "memory": memory_estimate(info),
    }


def build_app(
    collector: Collector, *, token: str | None, allow_kill: bool, stopping: anyio.Event
) -> ASGIApp:
    """The observer's ASGI application (see the module docstring)."""

    page = (STATIC / "index.html").read_text(encoding="utf-8")
    if token is not None:  # the page's own files need the token too
        suffix = "?token=" + quote(token, safe="")
        page = page.replace('.css"', f'.css{suffix}"').replace('.js"', f'.js{suffix}"')

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def config(request: Request) -> Response:
        return JSONResponse({"allow_kill": allow_kill, "tick": TICK})

    async def nodes(request: Request) -> Response:
        # One node for now; with distribution this lists every node of the cluster.
        node = (await collector.table()).node
        return JSONResponse([{"node": node, "local": True}])

    async def system(request: Request) -> Response:
        return JSONResponse(await collector.system())

    async def process_list(request: Request) -> Response:
        return JSONResponse([_row(pid, info) for pid, info in await read_table()])

    async def process_detail(request: Request) -> Response:
        key = request.path_params["key"]
        pid = find_pid(key)
        info = process_info(pid) if pid is not None else None
        if pid is None or info is None:
            return JSONResponse({"error": f"no live process {key}"}, status_code=404)
        detail = _row(pid, info)
        detail.update(
            {
                "links": [_pid(p) for p in info["links"]],
                "monitors": [short_repr(r, 100) for r in info["monitors"]],
                "monitored_by": info["monitored_by"],
                "trap_exit": info["trap_exit"],
                "parent": _pid(info["parent"]),
                "owner": _pid(info["owner"]),
                "children": [_pid(p) for p in info["children"]],
                "messages": [short_repr(m, 500) for m in info["messages"]],
                "state": short_repr(info["state"], 20_000),
            }
        )
        return JSONResponse(detail)

    async def kill(request: Request) -> Response:
        if not allow_kill:
            return JSONResponse(
                {"error": "killing processes is disabled on this observer (allow_kill=False)"},
                status_code=403,
            )
        key = request.path_params["key"]
        try:
            body = await request.json()
        except ValueError:
            body = {}
        reason = body.get("reason", "kill") if isinstance(body, dict) else "kill"
        if not isinstance(reason, str) or not reason or len(reason) > 200:
            return JSONResponse(
                {"error": "reason must be a non-empty string of at most 200 characters"},
                status_code=400,
            )
        pid = find_pid(key)
        if pid is None:
            return JSONResponse({"error": f"no live process {key}"}, status_code=404)
        try:
            exit_process(pid, reason)  # a plain string: nothing from the page is evaluated
        except LookupError:
            return JSONResponse({"error": f"no live process {key}"}, status_code=404)
        return JSONResponse({"killed": repr(pid), "reason": reason})

    async def tree(request: Request) -> Response:
        roots = []
        for pid, info in await read_table():
            parent = info["parent"]
            if parent is None or process_info(parent) is None:
                try:
                    node = await supervision_tree(pid, timeout=1.0)
                except Exception:  # exited, or too busy to answer which_children
                    continue
                roots.append(_tree_json(node, None))
        return JSONResponse(roots)

    def _tree_json(node: TreeNode, sup: PID | None) -> dict[str, Any]:
        info = process_info(node.pid) if node.pid is not None else None
        return {
            "id": node.id,
            "pid": _pid(node.pid),
            "class": node.cls,
            "status": info["status"] if info is not None else "not running",
            "behaviour": info.get("behaviour", node.cls) if info is not None else None,
            "message_queue_len": info["message_queue_len"] if info is not None else None,
            "restarts": collector.restart_count(sup, node.id) if sup is not None else 0,
            "children": [_tree_json(c, node.pid) for c in node.children],
        }

    async def crashes(request: Request) -> Response:
        return JSONResponse(list(collector.crashes))

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            while not stopping.is_set():
                yield f"event: tick\ndata: {json.dumps(await collector.system())}\n\n"
                with anyio.move_on_after(TICK):
                    await stopping.wait()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    async def metrics(request: Request) -> Response:
        await collector.table()  # read the process table here, with checkpoints
        return Response(generate_latest(collector.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/config", config),
            Route("/api/nodes", nodes),
            Route("/api/system", system),
            Route("/api/processes", process_list),
            Route("/api/processes/{key}", process_detail),
            Route("/api/processes/{key}/kill", kill, methods=["POST"]),
            Route("/api/tree", tree),
            Route("/api/crashes", crashes),
            Route("/api/events", events),
            Route("/metrics", metrics),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return _Guard(app, token)
