"""Fixtures for multi-node tests: a real ``nats-server`` per test module and real
node OS processes (``_peer.py``) that tests drive by lines and kill with signals."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from nodehelp import COOKIE, PeerNode

from anyotp.node import NatsServer


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    """One embedded nats-server for the whole module (port read from --ports_file_dir)."""
    server = NatsServer.start()
    yield server
    server.stop()


@pytest.fixture
def peers(anyio_backend: tuple[str, dict[str, object]]) -> Iterator[Callable[..., PeerNode]]:
    """Start node OS processes: ``peers(url, name)``; all are killed after the test."""
    started: list[PeerNode] = []

    def start(url: str, name: str, cookie: str = COOKIE, codec: str = "pickle") -> PeerNode:
        peer = PeerNode(url, name, anyio_backend[0], cookie, codec)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.close()
