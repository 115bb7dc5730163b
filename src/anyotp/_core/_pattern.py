"""Patterns for selective receive, compiled once into matcher functions.

A pattern is one of:

* a **literal** (``"ping"``, ``42``, ``None``, an enum member, ...): matches a value
  equal to it (``==``), extracts nothing;
* a **type** (``str``, ``dict``, ``PID``, a class): matches instances, extracts the value;
* a **tuple** (or list) of patterns: matches a tuple (list) of the same length whose
  elements match element-wise; extracts what its elements extract, in order;
* :data:`ANY`: matches anything and extracts it;
* :data:`IGNORE` (also spelled ``_``): matches anything, extracts nothing;
* a **predicate**, any other callable: matches when ``pred(value)`` is truthy and
  extracts the value.  Predicates must be pure (no side effects): the mailbox
  remembers which messages a receive already rejected.

``dict`` and ``set`` literals are rejected with :class:`~anyotp.InvalidPattern`: they
look like structural patterns but anyotp does not match them structurally; use the
type (``dict``) or a predicate instead.

``compile_pattern(p)`` returns a function ``value -> tuple | None``: the extracted
values on a match, ``None`` otherwise.  Compiled patterns are cached by the pattern
itself, so a ``receive`` in a loop compiles nothing after its first message.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from .._exceptions import InvalidPattern

__all__ = [
    "ANY",
    "IGNORE",
    "Matcher",
    "_",
    "compile_one",
    "compile_pattern",
    "compile_patterns",
    "match",
]

Matcher = Callable[[Any], "tuple[Any, ...] | None"]


class _Any:
    """The pattern that matches any value and extracts it (``ANY``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


class _Ignore:
    """The pattern that matches any value and extracts nothing (``IGNORE``, ``_``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "IGNORE"

    def __reduce__(self) -> str:
        return "IGNORE"


#: Matches any value and extracts it (passes it to the handler).
ANY: Final[Any] = _Any()
#: Matches any value and extracts nothing.  Also exported as ``_``.
IGNORE: Final[Any] = _Ignore()
#: Alias of :data:`IGNORE`.
_: Final[Any] = IGNORE

_EMPTY: Final[tuple[()]] = ()


def _extract(value: Any) -> tuple[Any, ...]:
    return (value,)


def _ignore(value: Any) -> tuple[Any, ...]:
    return _EMPTY


def _compile(pattern: Any, path: str) -> Matcher:
    if pattern is ANY:
        return _extract
    if pattern is IGNORE:
        return _ignore
    kind = type(pattern)
    if kind is tuple or kind is list or isinstance(pattern, tuple):
        # A namedtuple pattern matches instances of that class element-wise:
        # Point(ANY, 0) matches Point(x, 0) and extracts x.
        return _compile_seq(pattern, path)
    if isinstance(pattern, type):
        cls = pattern

        def match_type(value: Any) -> tuple[Any, ...] | None:
            return (value,) if isinstance(value, cls) else None

        return match_type
    if isinstance(pattern, dict | set | frozenset):
        raise InvalidPattern(
            f"invalid pattern {pattern!r}{f' at position {path}' if path else ''}: a "
            f"{type(pattern).__name__} literal is not "
            f"a matcher; use the type ({type(pattern).__name__}) to match any "
            f"{type(pattern).__name__}, or a predicate such as "
            + (
                "lambda m: m.get('key') == ... to test its contents"
                if isinstance(pattern, dict)
                else "lambda m: 'x' in m to test its contents"
            )
        )
    if callable(pattern):
        pred = pattern

        def match_pred(value: Any) -> tuple[Any, ...] | None:
            return (value,) if pred(value) else None

        return match_pred
    literal = pattern

    def match_literal(value: Any) -> tuple[Any, ...] | None:
        return _EMPTY if value == literal else None

    return match_literal


def _compile_flat(
    seq_type: Any,
    n: int,
    lits: tuple[tuple[int, Any], ...],
    picks: tuple[int, ...],
    types: tuple[tuple[int, type], ...] = (),
) -> Matcher:
    """A sequence pattern of literals, ANY, IGNORE and types only: the shape of almost
    every receive (``("tag", ANY)``, ``("reply", ref, ANY)``, ``("ping", PID)``).  The
    common cases get their own closures: no loop, no comprehension frame, no call per
    element (bench: ping_pong, selective_receive).  ``types`` are the picks that must
    also be instances of a class.
    """
    if types:
        if len(lits) == 1 and len(picks) == 1:
            (li, lv), (pi, cls) = lits[0], types[0]

            def match_1_t(value: Any) -> tuple[Any, ...] | None:
                if (
                    (type(value) is seq_type or isinstance(value, seq_type))
                    and len(value) == n
                    and value[li] == lv
                ):
                    v = value[pi]
                    if isinstance(v, cls):
                        return (v,)
                return None

            return match_1_t
        untyped = _compile_flat(seq_type, n, lits, picks)

        def match_flat_t(value: Any) -> tuple[Any, ...] | None:
            got = untyped(value)
            if got is None:
                return None
            for i, cls in types:
                if not isinstance(value[i], cls):
                    return None
            return got

        return match_flat_t
    if len(lits) == 1 and len(picks) == 1:
        (li, lv), pi = lits[0], picks[0]

        def match_1_1(value: Any) -> tuple[Any, ...] | None:
            if (
                (type(value) is seq_type or isinstance(value, seq_type))
                and len(value) == n
                and value[li] == lv
            ):
                return (value[pi],)
            return None

        return match_1_1
    if len(lits) == 1 and len(picks) == 2:
        (li, lv), (p1, p2) = lits[0], picks

        def match_1_2(value: Any) -> tuple[Any, ...] | None:
            if (
                (type(value) is seq_type or isinstance(value, seq_type))
                and len(value) == n
                and value[li] == lv
            ):
                return (value[p1], value[p2])
            return None

        return match_1_2
    # itemgetter returns a bare value for one index: wrap it so the result is a tuple
    if len(picks) == 1:
        only = picks[0]

        def pick(value: Any) -> tuple[Any, ...]:
            return (value[only],)

    elif picks:
        getter = operator.itemgetter(*picks)

        def pick(value: Any) -> tuple[Any, ...]:
            return getter(value)  # type: ignore[no-any-return]

    else:

        def pick(value: Any) -> tuple[Any, ...]:
            return _EMPTY

    def match_flat(value: Any) -> tuple[Any, ...] | None:
        if type(value) is not seq_type and not isinstance(value, seq_type):
            return None
        if len(value) != n:
            return None
        for i, lit in lits:
            if value[i] != lit:
                return None
        return pick(value)

    return match_flat


def _compile_seq(pattern: tuple[Any, ...] | list[Any], path: str) -> Matcher:
    seq_type = type(pattern)
    n = len(pattern)
    # Split positions into literal checks (one == each, nothing to extract) and
    # sub-matchers; the common ("tag", ANY, ANY) shape then costs one equality test
    # and two tuple slots.
    literals: list[tuple[int, Any]] = []
    subs: list[tuple[int, Matcher]] = []
    simple_extract: list[int] = []
    types: list[tuple[int, type]] = []
    only_simple = True
    for i, sub in enumerate(pattern):
        sub_kind = type(sub)
        if sub is ANY:
            subs.append((i, _extract))
            simple_extract.append(i)
        elif sub is IGNORE:
            continue
        elif isinstance(sub, type):  # a class: an instance of it, extracted
            subs.append((i, _compile(sub, f"{path}[{i}]")))
            simple_extract.append(i)
            types.append((i, sub))
        elif (
            not isinstance(sub, tuple)
            and sub_kind is not list
            and not isinstance(sub, type)
            and not callable(sub)
            and not isinstance(sub, dict | set | frozenset)
        ):
            literals.append((i, sub))
        else:
            only_simple = False
            subs.append((i, _compile(sub, f"{path}[{i}]")))
    lit_tuple = tuple(literals)
    if only_simple:
        return _compile_flat(seq_type, n, lit_tuple, tuple(simple_extract), tuple(types))
    sub_tuple = tuple(subs)

    def match_seq(value: Any) -> tuple[Any, ...] | None:
        if type(value) is not seq_type and not isinstance(value, seq_type):
            return None
        if len(value) != n:
            return None
        for i, lit in lit_tuple:
            if value[i] != lit:
                return None
        out: tuple[Any, ...] = _EMPTY
        for i, m in sub_tuple:
            got = m(value[i])
            if got is None:
                return None
            if got:
                out += got
        return out

    return match_seq


_CACHE_MAX: Final = 4096

# The compile caches are keyed by the pattern, and equal patterns may differ in their
# tuple types: Point(1, ANY) == (1, ANY), but a namedtuple pattern matches only its
# class.  So an entry keeps the pattern it was compiled from and where that pattern
# nests tuples, and a hit counts only if the pattern looked up has the same tuple
# types there (for a flat pattern: one type check).  Equal patterns of other types
# get entries of their own in _typed, keyed by their types.

#: an entry: (the pattern compiled, where it nests tuples (see _nesting), compiled)
_Entry = tuple[Any, tuple[Any, ...], Any]


def _nesting(pattern: Any) -> tuple[Any, ...]:
    """Where ``pattern`` nests tuples: ``((index, nesting of that element), ...)``."""
    if not isinstance(pattern, tuple):
        return ()
    return tuple((i, _nesting(p)) for i, p in enumerate(pattern) if isinstance(p, tuple))


def _same_tuples(a: Any, b: Any, nesting: tuple[Any, ...]) -> bool:
    """Do equal patterns ``a`` and ``b`` have the same tuple types where ``a`` nests?"""
    for i, inner in nesting:
        x, y = a[i], b[i]
        if type(x) is not type(y) or (inner and not _same_tuples(x, y, inner)):
            return False
    return True


def _types(pattern: Any) -> Any:
    """The tuple types of ``pattern``, nested as it nests them."""
    if not isinstance(pattern, tuple):
        return type(pattern)
    return (type(pattern), *(_types(p) for p in pattern if isinstance(p, tuple)))


_typed: dict[Any, Any] = {}


def _cached(cache: dict[Any, _Entry], pattern: Any, build: Callable[[Any], Any]) -> Any:
    """``build(pattern)``, cached in ``cache`` by the pattern and its tuple types."""
    try:
        orig, nesting, compiled = cache[pattern]
    except KeyError:
        return _miss(cache, pattern, build)
    except TypeError:  # unhashable (a list pattern): compile without caching
        return build(pattern)
    if orig is pattern or (
        type(orig) is type(pattern) and (not nesting or _same_tuples(orig, pattern, nesting))
    ):
        return compiled
    return _other_types(cache, pattern, build)


def _miss(cache: dict[Any, _Entry], pattern: Any, build: Callable[[Any], Any]) -> Any:
    compiled = build(pattern)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[pattern] = (pattern, _nesting(pattern), compiled)
    return compiled


def _other_types(cache: dict[Any, _Entry], pattern: Any, build: Callable[[Any], Any]) -> Any:
    """An equal pattern with other tuple types than the one ``cache`` holds."""
    key = (id(cache), _types(pattern), pattern)
    found = _typed.get(key)
    if found is None:
        found = build(pattern)
        if len(_typed) >= _CACHE_MAX:
            _typed.clear()
        _typed[key] = found
    return found


_cache: dict[Any, _Entry] = {}


def compile_pattern(pattern: Any) -> Matcher:
    """Compile ``pattern`` into a matcher ``value -> tuple | None`` (cached).

    Raises:
        InvalidPattern: the pattern contains a dict or set literal.
    """
    matcher: Matcher = _cached(_cache, pattern, _compile_top)
    return matcher


def _compile_top(pattern: Any) -> Matcher:
    return _compile(pattern, "")


#: compile_patterns' entries: (the patterns compiled, the type of each, where the
#: patterns nest tuples of their own (see _nesting), compiled)
_set_cache: dict[Any, tuple[Any, tuple[type, ...], tuple[Any, ...], tuple[Matcher, ...]]] = {}


def compile_patterns(patterns: tuple[Any, ...]) -> tuple[Matcher, ...]:
    """Compile a whole receive's worth of patterns; the same tuple object comes back
    for the same patterns, so the mailbox can recognise a repeated receive by identity.
    """
    # As _cached, with the types of the patterns themselves compared here (no
    # _same_tuples frame per receive of flat patterns)
    try:
        orig, types, deeper, compiled = _set_cache[patterns]
    except KeyError:
        compiled = _compile_each(patterns)
        if len(_set_cache) >= _CACHE_MAX:
            _set_cache.clear()
        nesting = tuple((i, inner) for i, inner in _nesting(patterns) if inner)
        _set_cache[patterns] = (patterns, tuple(map(type, patterns)), nesting, compiled)
        return compiled
    except TypeError:  # unhashable (a list pattern): compile without caching
        return _compile_each(patterns)
    if orig is patterns:
        return compiled
    n = len(types)
    if n == 2:  # unrolled: a loop over the patterns costs more than the lookup
        same = type(patterns[0]) is types[0] and type(patterns[1]) is types[1]
    elif n == 1:
        same = type(patterns[0]) is types[0]
    else:
        same = all(type(p) is t for p, t in zip(patterns, types, strict=True))
    if same and (not deeper or _same_tuples(orig, patterns, deeper)):
        return compiled
    found: tuple[Matcher, ...] = _other_types(_set_cache, patterns, _compile_each)  # type: ignore[arg-type]
    return found


def _compile_each(patterns: tuple[Any, ...]) -> tuple[Matcher, ...]:
    return tuple(compile_pattern(p) for p in patterns)


_one_cache: dict[Any, _Entry] = {}


def compile_one(pattern: Any) -> tuple[Matcher, ...]:
    """``compile_patterns((pattern,))``, looked up by the pattern itself: no 1-tuple to
    build, hash and compare per receive (bench: ping_pong, selective_receive)."""
    # _cached, inlined: no frame on a hit of a flat pattern (bench: ping_pong)
    try:
        orig, nesting, compiled = _one_cache[pattern]
    except KeyError:
        found: tuple[Matcher, ...] = _miss(_one_cache, pattern, _compile_one)
        return found
    except TypeError:  # unhashable (a list pattern)
        return compile_patterns((pattern,))
    if orig is pattern or (
        type(orig) is type(pattern) and (not nesting or _same_tuples(orig, pattern, nesting))
    ):
        hit: tuple[Matcher, ...] = compiled
        return hit
    other: tuple[Matcher, ...] = _other_types(_one_cache, pattern, _compile_one)
    return other


def _compile_one(pattern: Any) -> tuple[Matcher, ...]:
    return compile_patterns((pattern,))


def match(pattern: Any, value: Any) -> tuple[Any, ...] | None:
    """Match ``value`` against ``pattern``: the extracted values, or None.

    >>> match(("data", ANY), ("data", 42))
    (42,)
    >>> match(("event", IGNORE, ANY), ("event", "user_login", "127.0.0.1"))
    ('127.0.0.1',)
    >>> match(("msg", ("sub", int)), ("msg", ("sub", 1)))
    (1,)
    >>> match(str, 42) is None
    True

    Raises:
        InvalidPattern: the pattern contains a dict or set literal.
    """
    return compile_pattern(pattern)(value)
