"""Envelopes: how a signal travels between nodes, sealed under the cluster cookie.

Every envelope is ``version | codec | HMAC-SHA256(cookie, codec | body) | body``.  The
receiver checks the HMAC *before* decoding the body: an envelope that fails the check
(forged, damaged, or sealed under another cookie) is dropped and logged, never
unpickled.  That is what makes pickle acceptable as the default codec, like Erlang's
cookie guards ``binary_to_term``.  For deployments that want no pickle at all,
``codec="msgpack"`` carries only data (None, bools, numbers, str, bytes, lists,
tuples, dicts, PIDs and Refs) and refuses anything else at the sender.

The body names the sender's and the receiver's incarnations (creations), so the node
can drop an envelope replayed from or to a dead incarnation.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
from typing import Any, Final, Protocol

from .._core import PID, Ref
from ._seam import pid_from_wire, pid_to_wire, ref_from_wire, ref_to_wire

__all__ = [
    "BadEnvelope",
    "Codec",
    "MessageTooLarge",
    "MsgpackCodec",
    "PickleCodec",
    "Sealer",
    "get_codec",
]

log = logging.getLogger("anyotp.node")

_VERSION: Final = 1
_MAC_SIZE: Final = 32
_HEADER: Final = 2 + _MAC_SIZE


class MessageTooLarge(ValueError):
    """A message is larger than the NATS server's ``max_payload``.

    Attributes:
        size: the sealed envelope's size in bytes.
        limit: the server's ``max_payload`` in bytes.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class BadEnvelope(ValueError):
    """An envelope failed its check (wrong cookie, forged or damaged); never decoded."""


class Codec(Protocol):
    """Turns envelope bodies into bytes and back."""

    #: one byte that names the codec on the wire
    tag: int
    name: str

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj``; raise TypeError for a value the codec cannot carry."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` made."""
        ...


class PickleCodec:
    """Any picklable Python object (the default).  Only ever decoded after the
    envelope's HMAC checked out."""

    tag = 1
    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        """Pickle ``obj`` (highest protocol)."""
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``."""
        return pickle.loads(data)


_EXT_PID: Final = 1
_EXT_REF: Final = 2
_EXT_TUPLE: Final = 3


class MsgpackCodec:
    """Data only, no code runs on load: None, bool, int, float, str, bytes, list,
    tuple, dict, PID and Ref (tuples stay tuples).  Anything else raises TypeError
    at the sender."""

    tag = 2
    name = "msgpack"

    def __init__(self) -> None:
        import msgpack

        self._msgpack = msgpack

    def _default(self, obj: Any) -> Any:
        m = self._msgpack
        kind = type(obj)
        if kind is tuple:
            return m.ExtType(_EXT_TUPLE, self.dumps(list(obj)))
        if kind is PID:
            return m.ExtType(_EXT_PID, self.dumps(list(pid_to_wire(obj))))
        if kind is Ref:
            return m.ExtType(_EXT_REF, self.dumps(list(ref_to_wire(obj))))
        raise TypeError(
            f"the msgpack codec carries only data (None, bool, int, float, str, bytes, "
            f"list, tuple, dict, PID, Ref), not {kind.__name__} {obj!r}: send plain data, "
            "or start the node with codec='pickle'"
        )

    def _ext_hook(self, code: int, data: bytes) -> Any:
        items = self.loads(data)
        if code == _EXT_TUPLE:
            return tuple(items)
        if code == _EXT_PID:
            return pid_from_wire(*items)
        if code == _EXT_REF:
            return ref_from_wire(*items)
        raise ValueError(f"unknown msgpack extension type {code}")

    def dumps(self, obj: Any) -> bytes:
        """Pack ``obj``.

        Raises:
            TypeError: ``obj`` holds a value that is not data.
        """
        packed: bytes = self._msgpack.packb(
            obj, default=self._default, strict_types=True, use_bin_type=True
        )
        return packed

    def loads(self, data: bytes) -> Any:
        """Unpack ``data``."""
        return self._msgpack.unpackb(data, ext_hook=self._ext_hook, raw=False, strict_map_key=False)


def get_codec(codec: str | Codec) -> Codec:
    """The codec named ``"pickle"`` or ``"msgpack"``, or ``codec`` itself.

    Raises:
        ValueError: an unknown name.
    """
    if not isinstance(codec, str):
        return codec
    if codec == "pickle":
        return PickleCodec()
    if codec == "msgpack":
        return MsgpackCodec()
    raise ValueError(f"unknown codec {codec!r}: use 'pickle' (default) or 'msgpack'")


class Sealer:
    """Seals and opens envelopes under a cookie with one codec.

    Args:
        cookie: the cluster secret shared by every node (str or bytes, non-empty).
        codec: ``"pickle"``, ``"msgpack"`` or a :class:`Codec`.
    """

    __slots__ = ("_codec", "_key", "_tag")

    def __init__(self, cookie: str | bytes, codec: str | Codec = "pickle") -> None:
        if isinstance(cookie, str):
            cookie = cookie.encode()
        if not cookie:
            raise ValueError("the cookie must be a non-empty str or bytes shared by every node")
        self._key = hashlib.sha256(b"anyotp-cookie\x00" + cookie).digest()
        self._codec = get_codec(codec)
        self._tag = bytes((_VERSION, self._codec.tag))

    @property
    def codec(self) -> Codec:
        """The codec used to seal."""
        return self._codec

    def seal(self, obj: Any, limit: int | None = None, what: str = "message") -> bytes:
        """Encode ``obj`` and sign it.

        Args:
            obj: the envelope body.
            limit: the largest envelope in bytes (the server's ``max_payload``), or None.
            what: how to name the value in an error.

        Raises:
            MessageTooLarge: the sealed envelope is over ``limit``.
            TypeError: the codec cannot carry a value in ``obj``.
        """
        body = self._codec.dumps(obj)
        tag = self._tag
        mac = hmac.digest(self._key, tag + body, "sha256")
        data = b"".join((tag, mac, body))
        if limit is not None and len(data) > limit:
            raise MessageTooLarge(
                f"{what} is {len(data)} bytes encoded, over the NATS server's max_payload "
                f"of {limit} bytes: send a smaller message (or a reference to the data), "
                "or raise max_payload in the server's configuration",
                len(data),
                limit,
            )
        return data

    def open(self, data: bytes) -> Any:
        """Check and decode an envelope.

        Raises:
            BadEnvelope: wrong version or codec, or the HMAC does not match (wrong
                cookie, forged or damaged); the body was not decoded.
        """
        if len(data) < _HEADER or data[:2] != self._tag:
            raise BadEnvelope(
                f"envelope header {data[:2]!r} is not version {_VERSION} with codec "
                f"{self._codec.name!r} (a node with another codec or version?)"
            )
        mac = data[2:_HEADER]
        body = data[_HEADER:]
        if not hmac.compare_digest(mac, hmac.digest(self._key, data[:2] + body, "sha256")):
            raise BadEnvelope("envelope HMAC does not match: wrong cookie, forged or damaged")
        return self._codec.loads(body)
