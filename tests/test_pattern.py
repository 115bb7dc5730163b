"""Patterns: ``anyotp.match`` and the patterns ``Actor.receive`` takes."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import anyotp
from anyotp import ANY, IGNORE, PID, Actor, InvalidPattern, _, match
from anyotp._core import compile_one, compile_pattern, compile_patterns
from anyotp.testing import wait_until

pytestmark = pytest.mark.anyio


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Point(NamedTuple):
    x: int
    y: int


class TestLiterals:
    def test_a_literal_matches_an_equal_value_and_extracts_nothing(self) -> None:
        assert match("ping", "ping") == ()
        assert match(42, 42) == ()
        assert match(None, None) == ()
        assert match(Color.RED, Color.RED) == ()

    def test_a_literal_does_not_match_a_different_value(self) -> None:
        assert match("ping", "pong") is None
        assert match(42, 43) is None
        assert match(None, 0) is None
        assert match(Color.RED, Color.BLUE) is None

    def test_a_literal_compares_with_equality_not_identity(self) -> None:
        assert match(1, 1.0) == ()
        assert match("a" * 3, "".join(["a", "a", "a"])) == ()


class TestTypes:
    def test_a_type_matches_its_instances_and_extracts_the_value(self) -> None:
        assert match(str, "hello") == ("hello",)
        assert match(int, 7) == (7,)
        assert match(dict, {"key": "value"}) == ({"key": "value"},)

    def test_a_type_does_not_match_other_types(self) -> None:
        assert match(str, 42) is None
        assert match(dict, [("key", "value")]) is None

    def test_a_type_matches_instances_of_subclasses(self) -> None:
        assert match(tuple, Point(1, 2)) == (Point(1, 2),)
        assert match(Exception, ValueError("x")) is not None

    def test_PID_is_a_type_pattern(self) -> None:
        assert match(("ping", PID), ("ping", "not a pid")) is None


class TestTuples:
    def test_a_tuple_matches_element_wise_and_extracts_in_order(self) -> None:
        assert match(("add", int, int), ("add", 1, 2)) == (1, 2)

    def test_a_tuple_only_matches_a_tuple_of_the_same_length(self) -> None:
        assert match(("a", ANY), ("a",)) is None
        assert match(("a", ANY), ("a", 1, 2)) is None
        assert match((), ()) == ()
        assert match((), (1,)) is None

    def test_a_tuple_does_not_match_a_list_or_a_string(self) -> None:
        assert match(("a", "b"), ["a", "b"]) is None
        assert match(("a", "b"), "ab") is None

    def test_a_tuple_with_one_wrong_element_does_not_match(self) -> None:
        assert match(("add", int, int), ("add", 1, "2")) is None
        assert match(("add", int, int), ("sub", 1, 2)) is None

    def test_a_tuple_pattern_matches_a_namedtuple(self) -> None:
        assert match((int, ANY), Point(1, 2)) == (1, 2)


class TestNamedTuplePatterns:
    def test_a_namedtuple_pattern_matches_its_class_element_wise(self) -> None:
        assert match(Point(ANY, 0), Point(5, 0)) == (5,)
        assert match(Point(ANY, 0), Point(5, 1)) is None

    def test_a_namedtuple_pattern_does_not_match_a_plain_tuple(self) -> None:
        assert match(Point(ANY, 0), (5, 0)) is None

    def test_a_namedtuple_nested_in_a_tuple_pattern_is_structural_too(self) -> None:
        assert match(("at", Point(ANY, ANY)), ("at", Point(1, 2))) == (1, 2)


class TestLists:
    def test_a_list_matches_a_list_element_wise(self) -> None:
        assert match(["a", ANY, int], ["a", "b", 3]) == ("b", 3)

    def test_a_list_only_matches_a_list_of_the_same_length(self) -> None:
        assert match(["a", ANY], ["a"]) is None
        assert match(["a", ANY], ["a", 1, 2]) is None

    def test_a_list_does_not_match_a_tuple(self) -> None:
        assert match(["a", ANY], ("a", 1)) is None


class TestAnyAndIgnore:
    def test_ANY_matches_anything_and_extracts_it(self) -> None:
        for value in (None, 0, "", (), [1], {"a": 1}, object):
            assert match(ANY, value) == (value,)

    def test_IGNORE_matches_anything_and_extracts_nothing(self) -> None:
        for value in (None, 0, "", (), [1], {"a": 1}, object):
            assert match(IGNORE, value) == ()

    def test_underscore_is_IGNORE(self) -> None:
        assert _ is IGNORE
        assert match(("tag", _, ANY), ("tag", 1, 2)) == (2,)

    def test_ANY_and_IGNORE_have_readable_reprs(self) -> None:
        assert repr(ANY) == "ANY"
        assert repr(IGNORE) == "IGNORE"


class TestSeedExamples:
    """The four examples of the pattern documentation (seed 004), verbatim."""

    def test_match_a_specific_tag_and_extract_the_payload(self) -> None:
        # Message: ("data", 42)
        pattern = ("data", ANY)
        assert match(pattern, ("data", 42)) == (42,)

    def test_match_a_structure_but_ignore_part_of_it(self) -> None:
        # Message: ("event", "user_login", "127.0.0.1")
        pattern = ("event", IGNORE, ANY)
        assert match(pattern, ("event", "user_login", "127.0.0.1")) == ("127.0.0.1",)

    def test_match_by_type(self) -> None:
        # Message: {"key": "value"}
        pattern = dict
        assert match(pattern, {"key": "value"}) == ({"key": "value"},)

    def test_nested_matching(self) -> None:
        # Message: ("msg", ("sub", 1))
        pattern = ("msg", ("sub", int))
        assert match(pattern, ("msg", ("sub", 1))) == (1,)


class TestNesting:
    def test_nested_tuples_extract_depth_first_in_order(self) -> None:
        pattern = (ANY, ("b", (int, IGNORE, str)), ANY)
        assert match(pattern, (1, ("b", (2, "x", "y")), 3)) == (1, 2, "y", 3)

    def test_a_mismatch_deep_inside_fails_the_whole_match(self) -> None:
        pattern = ("msg", ("sub", ("deep", int)))
        assert match(pattern, ("msg", ("sub", ("deep", "1")))) is None
        assert match(pattern, ("msg", ("sub", ("deep", 1, 2)))) is None

    def test_lists_and_tuples_nest_in_each_other(self) -> None:
        assert match(("t", [ANY, ("x", int)]), ("t", [0, ("x", 5)])) == (0, 5)
        assert match(("t", [ANY, ("x", int)]), ("t", (0, ("x", 5)))) is None


class TestPredicates:
    def test_a_predicate_matches_when_true_and_extracts_the_value(self) -> None:
        def is_even(v: Any) -> bool:
            return isinstance(v, int) and v % 2 == 0

        assert match(is_even, 4) == (4,)
        assert match(is_even, 3) is None
        assert match(("n", is_even), ("n", 10)) == (10,)

    def test_a_lambda_inside_a_tuple_is_a_predicate(self) -> None:
        pattern = ("temp", lambda t: t > 30)
        assert match(pattern, ("temp", 31)) == (31,)
        assert match(pattern, ("temp", 20)) is None

    def test_a_predicate_may_test_a_dict_s_contents(self) -> None:
        pattern = lambda m: isinstance(m, dict) and m.get("key") == "value"  # noqa: E731
        assert match(pattern, {"key": "value"}) == ({"key": "value"},)
        assert match(pattern, {"key": "other"}) is None

    def test_a_predicate_that_raises_propagates_the_exception(self) -> None:
        def boom(v: Any) -> bool:
            raise ZeroDivisionError("boom")

        with pytest.raises(ZeroDivisionError, match="boom"):
            match(boom, 1)


class TestInvalidPatterns:
    def test_a_dict_literal_is_rejected_naming_the_pattern_and_the_fix(self) -> None:
        with pytest.raises(InvalidPattern, match=r"\{'key': 'value'\}.*use the type \(dict\)"):
            match({"key": "value"}, {"key": "value"})

    def test_a_set_literal_is_rejected_naming_the_pattern_and_the_fix(self) -> None:
        with pytest.raises(InvalidPattern, match=r"\{1, 2\}.*use the type \(set\).*predicate"):
            match({1, 2}, {1, 2})

    def test_a_frozenset_literal_is_rejected(self) -> None:
        with pytest.raises(InvalidPattern, match=r"frozenset"):
            match(frozenset({1}), frozenset({1}))

    def test_a_dict_literal_nested_inside_a_tuple_is_rejected_with_its_position(self) -> None:
        with pytest.raises(
            InvalidPattern, match=r"\{'a': 1\} at position \[1\].*use the type \(dict\)"
        ):
            match(("tag", {"a": 1}), ("tag", {"a": 1}))

    def test_a_set_literal_deeply_nested_is_rejected_with_its_position(self) -> None:
        with pytest.raises(InvalidPattern, match=r"\{3\} at position \[1\]\[0\].*set"):
            match(("tag", ({3},)), ("tag", ({3},)))

    def test_InvalidPattern_is_a_TypeError(self) -> None:
        assert issubclass(InvalidPattern, TypeError)
        assert issubclass(InvalidPattern, anyotp.OTPError)


class _ReceiveBadArgs(Actor):
    """Calls ``receive`` with the given arguments once, records the error, stops."""

    async def init(self, bad: tuple[Any, ...], result: dict[str, Any]) -> None:
        self._bad = bad
        self._result = result

    async def run(self, state: Any) -> Any:
        try:
            await self.receive(*self._bad, timeout=0)
        except Exception as e:
            self._result["error"] = e
        self.stop()


async def _receive_error(bad: tuple[Any, ...]) -> BaseException:
    result: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        pid = await _ReceiveBadArgs.start(bad, result, task_group=tg)
        await wait_until(lambda: not anyotp.is_alive(pid), timeout=2, what="the exit")
    error: BaseException = result["error"]
    return error


class TestPatternsInReceive:
    async def test_receive_passes_the_extracted_values_to_the_handler(self) -> None:
        got: list[Any] = []
        done = anyio.Event()

        class Receiver(Actor):
            async def run(self, state: Any) -> Any:
                await self.receive(
                    (("data", IGNORE, ANY, ("sub", int)), lambda a, b: got.extend([a, b]))
                )
                done.set()
                self.stop()

        async with anyio.create_task_group() as tg:
            pid = await Receiver.start(task_group=tg)
            await anyotp.send(pid, ("data", "skip", "keep", ("sub", 7)))
            with anyio.fail_after(2):
                await done.wait()
        assert got == ["keep", 7]

    @pytest.mark.parametrize(
        ("bad", "fragment"),
        [
            pytest.param(("ping",), r"got 'ping'.*\(pattern, handler\)", id="bare-pattern"),
            pytest.param((("ping", "not callable"),), r"not callable", id="handler-not-callable"),
            pytest.param((("a", print, "extra"),), r"extra", id="triple"),
            pytest.param((), r"at least one", id="no-pairs"),
        ],
    )
    async def test_receive_with_a_non_pair_argument_raises_InvalidPattern(
        self, bad: tuple[Any, ...], fragment: str
    ) -> None:
        error = await _receive_error(bad)
        with pytest.raises(InvalidPattern, match=fragment):
            raise error

    async def test_receive_with_a_dict_literal_pattern_raises_InvalidPattern(self) -> None:
        error = await _receive_error((({"a": 1}, print),))
        with pytest.raises(InvalidPattern, match=r"\{'a': 1\}.*dict"):
            raise error


# --------------------------------------------------------------------------- properties

leaves = st.one_of(st.integers(-5, 5), st.text(max_size=3))
trees = st.recursive(
    leaves, lambda children: st.lists(children, max_size=4).map(tuple), max_leaves=12
)

# How a leaf of the value becomes a leaf of the pattern.
LEAF_KINDS = ("literal", "any", "ignore", "type")


def _build(
    value: Any, draw_kind: Callable[[], str], extracted: list[Any], literal_paths: list[Any]
) -> Any:
    """Turn ``value`` into a pattern, recording what it must extract and where the
    literal leaves are (as index paths)."""

    def go(v: Any, path: tuple[int, ...]) -> Any:
        if type(v) is tuple:
            return tuple(go(x, (*path, i)) for i, x in enumerate(v))
        kind = draw_kind()
        if kind == "literal":
            literal_paths.append(path)
            return v
        if kind == "any":
            extracted.append(v)
            return ANY
        if kind == "ignore":
            return IGNORE
        extracted.append(v)
        return type(v)

    return go(value, ())


def _replace(tree: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    i = path[0]
    return (*tree[:i], _replace(tree[i], path[1:], new), *tree[i + 1 :])


def _tuple_paths(tree: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    if type(tree) is not tuple:
        return []
    out = [path]
    for i, x in enumerate(tree):
        out += _tuple_paths(x, (*path, i))
    return out


def _get(tree: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        tree = tree[i]
    return tree


def _different(v: Any) -> Any:
    return v + 1 if type(v) is int else v + "!"


class TestPatternProperties:
    @given(value=trees, data=st.data())
    def test_a_pattern_made_from_a_value_matches_it_and_extracts_the_ANY_and_type_leaves(
        self, value: Any, data: st.DataObject
    ) -> None:
        extracted: list[Any] = []
        pattern = _build(
            value, lambda: data.draw(st.sampled_from(LEAF_KINDS)), extracted, literal_paths=[]
        )
        assert match(pattern, value) == tuple(extracted)

    @given(value=trees, data=st.data())
    def test_changing_a_literal_leaf_of_the_value_makes_it_not_match(
        self, value: Any, data: st.DataObject
    ) -> None:
        literal_paths: list[Any] = []
        pattern = _build(value, lambda: data.draw(st.sampled_from(LEAF_KINDS)), [], literal_paths)
        if not literal_paths:
            return
        path = data.draw(st.sampled_from(literal_paths))
        changed = _replace(value, path, _different(_get(value, path)))
        assert match(pattern, changed) is None

    @given(value=trees, data=st.data())
    def test_a_tuple_length_mismatch_never_matches(self, value: Any, data: st.DataObject) -> None:
        pattern = _build(value, lambda: data.draw(st.sampled_from(LEAF_KINDS)), [], [])
        paths = _tuple_paths(value)
        if not paths:
            return
        path = data.draw(st.sampled_from(paths))
        sub = _get(value, path)
        shrink = bool(sub) and data.draw(st.booleans())
        resized = sub[:-1] if shrink else (*sub, data.draw(leaves))
        assert match(pattern, _replace(value, path, resized)) is None


def _reference_match(pattern: Any, value: Any) -> tuple[Any, ...] | None:
    """The obvious, slow definition of a flat pattern match, for comparison."""
    if not isinstance(value, type(pattern)) or len(value) != len(pattern):
        return None
    out: list[Any] = []
    for p, v in zip(pattern, value, strict=True):
        if p is ANY:
            out.append(v)
        elif p is IGNORE:
            continue
        elif isinstance(p, type):
            if not isinstance(v, p):
                return None
            out.append(v)
        elif p != v:
            return None
    return tuple(out)


_leaf = st.sampled_from([ANY, IGNORE, "a", "b", 1, 2, int, str])
_flat_pattern = st.lists(_leaf, min_size=0, max_size=5).map(tuple)
_flat_value = st.lists(st.sampled_from(["a", "b", 1, 2]), min_size=0, max_size=5).map(tuple)


class TestFlatPatternsAgainstAReference:
    @given(pattern=_flat_pattern, value=_flat_value)
    def test_every_flat_shape_matches_like_the_reference(
        self, pattern: tuple[Any, ...], value: tuple[Any, ...]
    ) -> None:
        assert match(pattern, value) == _reference_match(pattern, value)

    @given(pattern=_flat_pattern)
    def test_a_pattern_matches_a_value_built_from_it(self, pattern: tuple[Any, ...]) -> None:
        def leaf(p: Any) -> Any:
            if p is ANY or p is IGNORE:
                return "x"
            return p() if isinstance(p, type) else p  # int() == 0, str() == ""

        value = tuple(leaf(p) for p in pattern)
        expected = tuple(leaf(p) for p in pattern if p is ANY or isinstance(p, type))
        assert match(pattern, value) == expected

    def test_a_tag_and_a_type_match_the_tagged_instances_only(self) -> None:
        # ("ping", PID): the shape of a request that carries its sender
        pattern = ("ping", int)
        assert match(pattern, ("ping", 3)) == (3,)
        assert match(pattern, ("ping", True)) == (True,)  # bool is an int subclass
        assert match(pattern, ("ping", "3")) is None
        assert match(pattern, ("pong", 3)) is None
        assert match(pattern, ("ping", 3, 4)) is None
        assert match(("p", str, int), ("p", "a", 1)) == ("a", 1)
        assert match(("p", str, int), ("p", "a", "1")) is None


class TestCompiledReceiveKeys:
    """A receive's compiled patterns are looked up, not rebuilt: the mailbox knows a
    repeated receive by the identity of its key."""

    @given(pattern=_flat_pattern, value=_flat_value)
    def test_one_pattern_compiles_to_the_key_of_a_one_pattern_receive(
        self, pattern: tuple[Any, ...], value: tuple[Any, ...]
    ) -> None:
        key = compile_one(pattern)
        assert compile_one(tuple(pattern)) is key  # an equal pattern: the same key
        assert len(key) == 1
        assert key[0](value) == compile_patterns((pattern,))[0](value) == match(pattern, value)

    def test_an_unhashable_pattern_compiles_without_the_cache(self) -> None:
        key = compile_one(["a", ANY])
        assert key[0](["a", 1]) == (1,)
        assert key[0](["b", 1]) is None


class TestEqualPatternsOfOtherTupleTypes:
    """Point(1, ANY) == (1, ANY), but the namedtuple pattern matches Points only: the
    compile caches, keyed by the pattern, must not hand one the other's matcher."""

    @pytest.mark.parametrize("named_first", [True, False])
    def test_each_keeps_its_own_matcher_whichever_is_compiled_first(
        self, named_first: bool
    ) -> None:
        plain: tuple[Any, ...] = (1, ANY)
        named = Point(1, ANY)
        assert plain == named
        order = [named, plain] if named_first else [plain, named]
        for pattern in order + order:  # the second round comes from the caches
            one = compile_one(pattern)[0]
            many = compile_patterns((pattern, "other"))[0]
            single = compile_pattern(pattern)
            nested = compile_pattern(("at", pattern))
            for matcher in (one, many, single):
                assert matcher(Point(1, 2)) == (2,)
                assert matcher((1, 2)) == (None if pattern is named else (2,))
            assert nested(("at", (1, 2))) == (None if pattern is named else (2,))
            assert nested(("at", Point(1, 2))) == (2,)

    async def test_a_receive_takes_what_its_own_pattern_matches(self) -> None:
        got: list[Any] = []

        class Receiver(Actor):
            async def run(self, state: Any) -> Any:
                me = self.pid
                anyotp.send_nowait(me, Point(1, "point"))
                got.append(await self.receive((Point(1, ANY), lambda v: v), timeout=5))
                anyotp.send_nowait(me, (1, "plain"))
                got.append(await self.receive(((1, ANY), lambda v: v), timeout=5))
                anyotp.send_nowait(me, (1, "plain again"))
                anyotp.send_nowait(me, Point(1, "point again"))
                got.append(await self.receive((Point(1, ANY), lambda v: v), timeout=5))
                got.append(await self.receive(((1, ANY), lambda v: v), timeout=5))
                self.stop()

        async with anyio.create_task_group() as tg:
            pid = await Receiver.start(task_group=tg)
            await wait_until(lambda: not anyotp.is_alive(pid), what="the receiver to finish")
        assert got == ["point", "plain", "point again", "plain again"]

    def test_nested_and_three_way_equal_patterns_keep_their_own_matchers(self) -> None:
        class Q(NamedTuple):
            x: int
            y: int

        # three equal patterns of three tuple types
        compile_one((1, ANY))
        compile_one(Point(1, ANY))
        assert compile_one(Q(1, ANY))[0](Point(1, 2)) is None
        assert compile_one(Q(1, ANY))[0](Q(1, 2)) == (2,)
        # a namedtuple nested in a single pattern, and in one of several
        compile_one(("at", (1, ANY)))
        assert compile_one(("at", Point(1, ANY)))[0](("at", (1, 2))) is None
        compile_patterns((("x", (1, ANY)), "y"))
        assert compile_patterns((("x", Point(1, ANY)), "y"))[0](("x", (1, 2))) is None
        assert compile_patterns((("x", (1, ANY)), "y"))[0](("x", Point(1, 2))) == (2,)
