"""Runtime checks of the message types a sync server declares, compiled once per class.

``TypedGenServer[CastMsg, CallMsg, State]`` checks every cast and call message with
``isinstance`` against ``CastMsg`` / ``CallMsg``.  This module turns such a type
argument into a predicate and a description for error messages:

=============================================  ==========================================
type argument                                  accepts
=============================================  ==========================================
a class (``Increment``, ``dict``)              instances of it (and of its subclasses)
``A | B``, ``typing.Union[A, B]``, ``Optional``  instances of any member
``None``                                       ``None``
a generic alias (``dict[str, Any]``)           instances of its origin (``dict``); the
                                               parameters are not checked
``Literal["a", 1]``                            those values
``Annotated[T, ...]``, ``NewType``              what ``T`` / the supertype accepts
``Any``, ``object``, a ``TypeVar``             anything
=============================================  ==========================================

Anything else (a Protocol that is not ``@runtime_checkable``, a string forward
reference) is rejected with a ``TypeError`` when the class is defined, not when the
first message arrives.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

__all__ = ["ANYTHING", "MessageType", "compile_message_type"]


class MessageType:
    """A compiled message type: ``accepts(message)`` and a ``description`` for errors.

    An object rather than a bare function so that a class attribute holding one is
    not turned into a bound method when read through an instance.
    """

    __slots__ = ("accepts", "description")

    def __init__(self, accepts: Callable[[object], bool], description: str) -> None:
        self.accepts = accepts
        self.description = description


def _accept_all(message: object) -> bool:
    return True


#: The type of an unconstrained parameter (``Any``, ``object``, a TypeVar).
ANYTHING: Final = MessageType(_accept_all, "anything")


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


_ANYTHING: Any = object()


def _members(tp: Any, where: str) -> list[type | _Literal] | Any:
    """Flatten ``tp`` into classes and literal values; ``_ANYTHING`` if unconstrained."""
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return _ANYTHING
    if tp is None or tp is type(None):
        return [type(None)]
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        out: list[type | _Literal] = []
        for arg in get_args(tp):
            got = _members(arg, where)
            if got is _ANYTHING:
                return _ANYTHING
            out.extend(got)
        return out
    if origin is Literal:
        return [_Literal(v) for v in get_args(tp)]
    if origin is Annotated:
        return _members(get_args(tp)[0], where)
    if isinstance(origin, type):  # dict[str, Any], typing.List[int], abc.Sequence[int]
        return [origin]
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _members(supertype, where)
    if isinstance(tp, type):
        if getattr(tp, "_is_protocol", False) and not getattr(tp, "_is_runtime_protocol", False):
            raise TypeError(
                f"{where}: {tp.__name__} is a Protocol without @runtime_checkable, so "
                "isinstance() cannot check messages against it: decorate it with "
                "@typing.runtime_checkable, or use a class or a union of classes"
            )
        return [tp]
    raise TypeError(
        f"{where}: cannot check messages against {tp!r} at run time: use a class, a union "
        "of classes (A | B), None, Literal[...] or Any"
    )


def describe(tp: Any) -> str:
    """How an error message names the type ``tp``: ``a dict``, ``Increment | Decrement``."""
    if tp is None or tp is type(None):
        return "None"
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return " | ".join(describe(a) for a in get_args(tp))
    if origin is Annotated:
        return describe(get_args(tp)[0])
    if isinstance(origin, type):
        tp = origin
    if isinstance(tp, type):
        name = tp.__name__
        if getattr(builtins, name, None) is tp:
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
        return name
    return repr(tp).replace("typing.", "")


def compile_message_type(tp: Any, where: str) -> MessageType:
    """Compile the type argument ``tp`` into a :class:`MessageType`.

    Args:
        tp: the ``CastMsg`` or ``CallMsg`` type argument of a ``TypedGenServer``.
        where: names the class and parameter for error messages.

    Raises:
        TypeError: ``tp`` cannot be checked with ``isinstance`` (see the module table).
    """
    members = _members(tp, where)
    if members is _ANYTHING:
        return ANYTHING
    classes = tuple(m for m in members if isinstance(m, type))
    literals = tuple(m.value for m in members if isinstance(m, _Literal))
    if not literals:
        classinfo = classes[0] if len(classes) == 1 else classes

        def check_classes(message: object) -> bool:
            return isinstance(message, classinfo)

        return MessageType(check_classes, describe(tp))

    def check_mixed(message: object) -> bool:
        if classes and isinstance(message, classes):
            return True
        # Literal values match by type and value (so Literal[1] rejects True and 1.0).
        return any(type(message) is type(v) and message == v for v in literals)

    return MessageType(check_mixed, describe(tp))
