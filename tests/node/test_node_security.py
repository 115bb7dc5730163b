"""Envelopes are sealed under the cookie: forged, damaged, wrong-cookie and replayed
envelopes are dropped (and logged) before anything is decoded; oversized messages
fail at the sender."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable

import anyio
import pytest
from nodehelp import COOKIE, PeerNode

import anyotp.node
from anyotp.node import BadEnvelope, MessageTooLarge, NatsServer, Sealer
from anyotp.testing import wait_until


class _Boom:
    """Unpickling this would run code: the tests check it never is."""

    ran = False

    def __reduce__(self) -> tuple[object, ...]:
        return (_Boom._explode, ())

    @staticmethod
    def _explode() -> None:
        _Boom.ran = True


class TestSealer:
    def test_an_envelope_opens_under_the_same_cookie(self) -> None:
        sealer = Sealer("secret")
        assert sealer.open(sealer.seal(("msg", 1, [2, 3]))) == ("msg", 1, [2, 3])

    def test_a_wrong_cookie_is_refused_without_unpickling(self) -> None:
        data = Sealer("theirs").seal(_Boom())
        with pytest.raises(BadEnvelope, match="HMAC does not match"):
            Sealer("ours").open(data)
        assert not _Boom.ran

    def test_a_forged_body_is_refused_without_unpickling(self) -> None:
        good = Sealer("secret").seal("hello")
        forged = good[:34] + pickle.dumps(_Boom())
        with pytest.raises(BadEnvelope, match="HMAC does not match"):
            Sealer("secret").open(forged)
        assert not _Boom.ran

    def test_a_truncated_or_foreign_envelope_is_refused(self) -> None:
        with pytest.raises(BadEnvelope, match="not version 1"):
            Sealer("secret").open(b"\x00")
        with pytest.raises(BadEnvelope, match="codec 'msgpack'"):
            Sealer("secret", "msgpack").open(Sealer("secret").seal("x"))

    def test_an_oversized_message_fails_at_the_sender_with_the_sizes(self) -> None:
        with pytest.raises(MessageTooLarge, match=r"over the NATS server's max_payload of 1000"):
            Sealer("secret").seal(b"x" * 2000, 1000)

    def test_an_empty_cookie_is_refused(self) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            Sealer("")

    def test_msgpack_carries_data_pids_and_tuples_and_refuses_objects(self) -> None:
        sealer = Sealer("secret", "msgpack")
        value = {"a": (1, 2.5, "x", b"y", None, [True, (3,)])}
        assert sealer.open(sealer.seal(value)) == value
        with pytest.raises(TypeError, match="carries only data"):
            sealer.seal(_Boom())


@pytest.mark.anyio
class TestOnTheWire:
    async def test_forged_and_wrong_cookie_envelopes_are_dropped_and_logged(
        self,
        nats_server: NatsServer,
        peers: Callable[..., PeerNode],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING, logger="anyotp.node")
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE) as me:
            intruder = peers(nats_server.url, "intruder", cookie="not-the-cookie")
            await intruder.expect("ready")
            await wait_until(
                lambda: "HMAC does not match" in caplog.text, what="the drop is logged"
            )
            assert anyotp.node.nodes() == []
            forged = Sealer(COOKIE).seal(("hb", "forger@x", 7, 0, "forger@x", None, 0))
            forged = forged[:-1] + bytes([forged[-1] ^ 1])
            await anyio.to_thread.run_sync(
                lambda: me.run_io(me._nc.publish(me.subject, forged)).result(5)
            )
            await wait_until(lambda: caplog.text.count("HMAC does not match") >= 2)
            assert anyotp.node.nodes() == []

    async def test_an_envelope_replayed_from_a_dead_incarnation_is_dropped(
        self, nats_server: NatsServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="anyotp.node")
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE) as me:
            sealer = Sealer(COOKIE)
            hello = sealer.seal(("hb", "ghost@x", 42, 0, "ghost@x", None, 0))
            bye = sealer.seal(("bye", "ghost@x", 42, 0, "ghost@x", None, 0))

            async def publish(data: bytes) -> None:
                await anyio.to_thread.run_sync(
                    lambda: me.run_io(me._nc.publish(me.subject, data)).result(5)
                )

            await publish(hello)
            await wait_until(lambda: anyotp.node.nodes() == ["ghost@x"], what="ghost up")
            await publish(bye)
            await wait_until(lambda: anyotp.node.nodes() == [], what="ghost down")
            await publish(hello)  # the replay
            await wait_until(
                lambda: "from a dead incarnation of ghost@x" in caplog.text,
                what="the replay is dropped",
            )
            assert anyotp.node.nodes() == []
            stale = sealer.seal(("hb", "ghost@x", 43, me.creation + 1, "ghost@x", None, 0))
            await publish(stale)
            await wait_until(
                lambda: "for a previous incarnation" in caplog.text,
                what="an envelope for another incarnation of this node is dropped",
            )
            assert anyotp.node.nodes() == []

    async def test_nodes_on_the_msgpack_codec_share_names_and_groups(
        self, nats_server: NatsServer, peers: Callable[..., PeerNode]
    ) -> None:
        async with anyotp.node.start("tester", url=nats_server.url, cookie=COOKIE, codec="msgpack"):
            p = peers(nats_server.url, "packer", codec="msgpack")
            name = (await p.expect("ready")).split()[1]
            await wait_until(lambda: anyotp.node.nodes() == [name], what="packer is up")
            assert await p.ask("register packed", "registered") == "registered packed True"
            pid = await wait_until(lambda: anyotp.node.whereis_name("packed"), what="seen")
            assert anyotp.node.node(pid) == name
            await p.ask("join g", "joined")
            member = await wait_until(lambda: anyotp.node.members("g"), what="the member is seen")
            assert [anyotp.node.node(m) for m in member] == [name]

    async def test_nats_credentials_pass_through_and_wrong_ones_are_refused(
        self, nats_server: NatsServer
    ) -> None:
        async with anyotp.node.start(
            "tester", url=nats_server.url, cookie=COOKIE, user="app", password="app"
        ):
            assert anyotp.node.node().startswith("tester@")
        with pytest.raises(ConnectionError, match="could not connect to NATS"):
            async with anyotp.node.start(
                "tester", url=nats_server.url, cookie=COOKIE, user="app", password="wrong"
            ):
                pass
        assert anyotp.node.node() == "nonode@nohost"
